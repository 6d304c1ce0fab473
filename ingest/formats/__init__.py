"""Station formats: what real equipment already sends, decoded into offsite's own messages.

Each format is a small module with one ``decode(body, registry)`` that turns what a station sent
(one record or a batch) into :class:`Item` s — a ``road.wim`` record or a ``road.anpr`` capture
as offsite's own JSON, with the images it names by URL or carries inline — or, for a record it
cannot map, an :class:`Unmapped` that names the format's own field. The gateway
(``POST /v1/formats/{name}``), the folder watcher and ``offsite ingest import`` / ``replay
--format`` all go through :func:`decode`; an unmapped record becomes a dead letter
(:func:`dead_letter`) on the topic it would have gone to.

A device is found by the code its records carry (``codes`` of the device in the registry, e.g.
``{zhichao: "43012106"}``); its site is the one site it is registered at.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from events.registry import Registry
from events.stage import Outgoing

from . import kakou, tmg, zhichao
from .base import TOPICS, Decoded, Format, Item, Unmapped, checked, dead_letter

__all__ = ["FORMATS", "Decoded", "Format", "Item", "Unmapped", "dead_letter", "decode", "messages"]

FORMATS = {f.name: f for f in (zhichao.FORMAT, kakou.FORMAT, tmg.FORMAT)}


def decode(name: str, body: bytes, registry: Registry) -> Decoded:
    """The items of ``body`` in format ``name``, each checked against offsite's model; a record
    one of whose items cannot be mapped is unmapped as a whole (no capture without its weighing)."""
    fmt = FORMATS[name]
    out: Decoded = []
    for x in fmt.decode(body, registry):
        try:
            out.append(checked(fmt, x) if isinstance(x, Item) else x)
        except Unmapped as exc:
            out.append(exc)
    bad = {x.raw for x in out if isinstance(x, Unmapped)}
    return [x for x in out if isinstance(x, Unmapped) or x.raw not in bad]


def messages(
    results: Sequence[Item | Unmapped], prefix: str = ""
) -> tuple[list[Outgoing], list[Outgoing]]:
    """(messages, dead letters) of decoded records that carry no images to fetch (a file
    import): each item on its topic keyed by its site, each unmapped record as a dead letter."""
    sent, dead = [], []
    for x in results:
        if isinstance(x, Unmapped):
            dead.append(dead_letter(x, prefix))
        else:
            sent.append(Outgoing(prefix + TOPICS[x.kind], x.doc["site_id"].encode(),
                                 json.dumps(x.doc, ensure_ascii=False).encode()))  # fmt: skip
    return sent, dead

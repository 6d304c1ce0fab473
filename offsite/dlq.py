"""`offsite dlq list|show|replay TOPIC`: the dead letters of a topic, with their reasons, and
re-injecting them into the topic they came from once the cause is fixed (a site added to the
registry, a device's firmware corrected). Each dead letter is replayed at most once."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from events import DeadLetter, UsageError, dlq
from events.stage import Outgoing
from sinks import CaseStore

from .config import Settings
from .kafka import Record, producer, read_records, send_all
from .services import endpoints


def add_parser(
    sub: Any, parser_class: type[argparse.ArgumentParser], aware: Callable[[str], dt.datetime]
) -> None:
    """``aware``: the command line's parser of a time with a UTC offset."""
    d = sub.add_parser("dlq", help="dead letters: list, show, replay after a fix")
    dsub = d.add_subparsers(dest="action", required=True, parser_class=parser_class)
    for name, what in (("list", "one line per dead letter"),
                       ("show", "one dead letter in full, with its message"),
                       ("replay", "send the dead letters back to their topic, each once")):  # fmt: skip
        a = dsub.add_parser(name, help=what)
        a.add_argument("topic", metavar="TOPIC", help="e.g. road.wim (or road.wim.dlq)")
        if name == "show":
            a.add_argument(
                "at", metavar="PARTITION:OFFSET", type=_at, help="as `dlq list` prints it"
            )
        else:
            a.add_argument(
                "--since", type=aware, help="ISO time with offset: dead-lettered at or after"
            )
            a.add_argument("--reason", help="only reasons containing this text")  # fmt: skip


def _at(text: str) -> tuple[int, int]:
    part, _, off = text.partition(":")
    if not (part.isdigit() and off.isdigit()):
        raise argparse.ArgumentTypeError(f"PARTITION:OFFSET expected, got {text!r}")
    return int(part), int(off)


def _dead(r: Record) -> DeadLetter | None:
    try:
        return DeadLetter.model_validate_json(r.value)
    except ValueError:
        return None


async def command(args: argparse.Namespace, settings: Settings) -> int:
    ep = endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    topic = args.topic.removesuffix(".dlq")
    source = dlq(topic if topic.startswith(prefix) else prefix + topic)
    records = [(r, _dead(r)) for r in await read_records(ep.bootstrap, source)]
    if args.action == "show":
        found = [(r, d) for r, d in records if (r.partition, r.offset) == args.at]
        if not found:
            raise UsageError(f"{source} has no dead letter at {args.at[0]}:{args.at[1]}")
        r, d = found[0]
        print(json.dumps(d.model_dump() if d else {"unreadable": r.value.decode(errors="replace")},
                         ensure_ascii=False, indent=2))  # fmt: skip
        return 0
    since = args.since.timestamp() * 1000 if args.since else None
    chosen = [(r, d) for r, d in records if d is not None
              and (since is None or r.timestamp_ms >= since)
              and (args.reason is None or args.reason in d.reason)]  # fmt: skip
    if args.action == "list":
        for r, d in chosen:
            at = dt.datetime.fromtimestamp(r.timestamp_ms / 1000, dt.UTC).isoformat(
                timespec="seconds"
            )
            print(f"{r.partition}:{r.offset}  {at}  {d.stage:9} {d.topic}[{d.partition}]@{d.offset}"
                  f"  {d.reason[:160]}")  # fmt: skip
        print(f"{len(chosen)} of {len(records)} dead letters of {source}")
        return 0
    by_key = {(r.partition, r.offset): d for r, d in chosen}
    store = await CaseStore.connect(ep.database_url)
    try:
        async with producer(ep.bootstrap) as prod:

            async def send(new: set[tuple[int, int]]) -> None:
                await send_all(prod, [Outgoing(d.topic, d.key.encode() if d.key else None,
                                               d.value.encode()) for k, d in sorted(by_key.items())
                                      if k in new])  # fmt: skip

            new = await store.replay_once(source, sorted(by_key), send)
    finally:
        await store.close()
    print(f"replayed {len(new)} dead letters of {source}; {len(by_key) - len(new)} had been "
          "replayed before")  # fmt: skip
    return 0

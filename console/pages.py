"""What every page of the console shares: the :class:`Console` it is given, the Jinja templates
and ``render``, the handler type, and the labels the templates show. ``app``, ``command``,
``notice`` and ``party`` all import it; it imports none of them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from cases.credit import Credit
from cases.sealing import Sealer, seal_svg
from events import OffsiteError, Registry
from events.registry import PLATE_COLOR_ZH
from events.water import WaterRegistry
from sinks.accounts import (
    ADMIN,
    HEAD,
    LEGAL_REVIEWER,
    OFFICER,
    Accounts,
    Session,
    Sessions,
    Throttle,
)
from sinks.blobs import BlobStore
from sinks.dispatch import Dispatch, Squads
from sinks.lifecycle import Lifecycle
from sinks.outbound import Outbound

from . import names

log = logging.getLogger("offsite.console")

HERE = Path(__file__).parent
CASE_VIEWERS = frozenset({OFFICER, LEGAL_REVIEWER, ADMIN, HEAD})
# what the officer's queue can show; the first is the default
QUEUES = {
    "pending_review": "待审核",
    "statement_received": "已收到陈述申辩",
    "sent_back": "法制审核退回",
    "confirmed": "已确认（待送达）",
    "approved": "法制审核通过（待送达）",
    "notice_issued": "已告知",
}
DOMAINS = {"road": "道路", "water": "水路"}
OUTCOMES = names.OUTCOMES
PLATE_COLORS = PLATE_COLOR_ZH  # every colour the registry knows (review A2: 黄绿 was missing)


@dataclass
class Console:
    """What the app needs. ``evidence_dir``: the packages, ``<dir>/<case_id>/``."""

    pool: asyncpg.Pool
    lifecycle: Lifecycle
    evidence_dir: Path
    throttle: Throttle = field(default_factory=Throttle)
    # served over TLS (or behind a TLS proxy): cookies are Secure and HSTS is sent
    secure_cookies: bool = False
    # sites and devices (configs/sites.yaml), waterway checkpoints: the command center's map
    registry: Registry | None = None
    waterways: WaterRegistry | None = None
    blobs: BlobStore | None = None  # the party's statement images (console/party.py)
    # where the party opens /party, as the notice prints it (console.public_url, or the
    # console's own local address): never the address a request claims to have come to
    public_url: str = "http://127.0.0.1:8080"
    # after the party's log-in: page and image views per case, statements per case
    party_views: Throttle = field(default_factory=lambda: Throttle(limit=120, window_s=600))
    party_statements: Throttle = field(default_factory=lambda: Throttle(limit=5, window_s=3600))
    squads: Squads | None = None  # squads, their areas and the dispatch rules (console/dispatch.py)
    geojson: dict[str, Any] | None = None  # roads and waterways under the map (console/atlas.py)
    # seconds between the background dispatch sweeps (console/dispatch.py sweeping); None: none
    sweep_s: float | None = None
    # the one Dispatch of this console (console.dispatch.dispatch_of): pages and sweeps share the
    # squads it last read
    dispatch: Dispatch | None = field(default=None, init=False, repr=False)
    payment_secret: str | None = (
        None  # HMAC key of the bank's payment callback (console/payments.py)
    )
    # called with a case's id when an action closed it: files it (console/casefile.py)
    on_closed: Callable[[str], Awaitable[None]] | None = None
    casefile_dir: Path | None = None  # the 电子案卷 it files, for the 评查 page
    outbound: Outbound | None = None  # where 抄告 records go (console/chaogao.py); None: not sent
    sealer: Sealer | None = None  # signs the documents' PDFs (cases/sealing.py); None: unsigned
    credit: Credit | None = None  # the 严重失信 list and 信用修复 (console/credit.py); None: off
    credit_sweep_s: float | None = None  # seconds between the background credit sweeps
    weighings_years: int | None = None  # the years of weighings kept (console/stats.py); None: all
    sessions: Sessions = field(init=False)
    accounts: Accounts = field(init=False)

    def __post_init__(self) -> None:
        self.sessions, self.accounts = Sessions(self.pool), Accounts(self.pool)

    def now(self) -> dt.datetime:
        return self.lifecycle.clock()


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_env.globals.update(STATES=names.STATES, ROLES=names.ROLES, OUTCOMES=OUTCOMES,
                    PLATE_COLORS=PLATE_COLORS, REJECT_REASONS=names.REASONS, QUEUES=QUEUES,
                    DOMAINS=DOMAINS, zh=names.name, cert_fields=names.certificate_fields,
                    rule_name=names.rule_name)  # fmt: skip
_env.globals["seal"] = lambda agency: Markup(seal_svg(agency or ""))
_env.filters["yesno"] = names.yes_no
_env.filters["fromjson"] = json.loads
_env.filters["caption"] = names.image_caption  # an evidence image by what it shows (D.12)


@contextlib.asynccontextmanager
async def repeating(
    what: str, every_s: float | None, work: Callable[[], Awaitable[str | None]]
) -> AsyncIterator[None]:
    """A background job of the console while it serves: ``work()`` now and every ``every_s``
    seconds (None: no job); what it returns is logged, an offsite error is logged and the job
    goes on; any other error is logged with its traceback (a bug) and the job goes on too: the
    next round may well succeed, and a job that ended silently would leave its work undone."""

    async def loop(every: float) -> None:
        while True:
            try:
                done = await work()
                if done:
                    log.info("%s: %s", what, done)
            except OffsiteError as exc:
                log.warning("%s failed: %s", what, exc)
            except Exception:
                log.exception("%s failed (a bug)", what)
            await asyncio.sleep(every)

    job = asyncio.create_task(loop(every_s)) if every_s else None
    try:
        yield
    finally:
        if job is not None:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job


def render(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**ctx), status_code=status)


Handler = Callable[[Request, Session], Awaitable[Response]]


def _token() -> str:
    return secrets.token_urlsafe(32)


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None

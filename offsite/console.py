"""`offsite console`: the web console wired to the case store, the evidence packages and the rules.

The lifecycle (``sinks.lifecycle``) knows neither packages nor rules; here it gets both: custody
entries go into ``<evidence dir>/<case_id>/custody.jsonl`` (the package the case was opened
with: a re-decision's package beside it has a log of its own), and a corrected plate is decided
again by the rules stage with the case store's history.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from cases.art37 import Rejudge
from cases.credit import Credit
from cases.procedure import procedure_lifecycle
from cases.sealing import Sealer
from console import Console, create_app
from console.casefile import file_on_close
from console.chaogao import chaogao_on_close
from detectors.plates import PLATE
from events import DETECTIONS, UsageError, Violation
from events.clock import Clock, wall_clock
from events.registry import PLATE_COLOR_ZH
from events.stage import Incoming
from evidence import EvidenceError, Signer, append_custody
from rules import RulesStage
from sinks import BlobStore, CaseStore
from sinks.accounts import ROLES, AccountError, Accounts
from sinks.lifecycle import CustodyError, Head, Redecide

from . import services
from .config import (
    ConsoleSettings,
    Settings,
    load_baselines,
    load_calendar,
    load_map,
    load_squads,
    load_waterways,
    registry_of,
)


def console_settings(settings: Settings) -> ConsoleSettings:
    return settings.console


class PackageCustody:
    """The lifecycle's custody log: each case's evidence package, signed with the agency key."""

    def __init__(self, evidence_dir: Path, signer: Signer) -> None:
        self.evidence_dir, self.signer = evidence_dir, signer

    def append(
        self, case_id: str, event: str, actor: str, ts: dt.datetime, detail: str, expect: Head
    ) -> Head:
        package = self.evidence_dir / case_id
        if not (package / "tagmanifest-sha256.txt").is_file():
            raise CustodyError("本案证据包尚未生成，暂不能办理", case_id)
        try:
            entry = append_custody(package, event, actor, self.signer, ts, detail,  # type: ignore[arg-type]
                                   expect=(expect.length, expect.hash))  # fmt: skip
        except EvidenceError as exc:
            raise CustodyError(f"证据包保全记录异常，已停止办理：{exc}", case_id) from exc
        return Head(entry["seq"], entry["hash"])


def redecider(settings: Settings, store: CaseStore, clock: Clock) -> Redecide:
    """The rules stage deciding a detection again with a corrected plate (and the case store's
    history of that vehicle), at the console's ``clock``."""
    # the pipeline's decision path: the case store's history and its trip store, so that a
    # corrected pass joins its vehicle's trip (Art. 29, review A1) and is remembered in it
    rules = RulesStage(
        load_baselines(settings.baselines), registry_of(settings), store, trips=store, clock=clock
    )

    async def redecide(old: Violation, plate: str, color: str | None) -> Violation:
        if not PLATE.match(plate):
            raise ValueError(f"{plate} 不是有效的机动车号牌")
        if color is not None and color not in PLATE_COLOR_ZH:
            raise ValueError(f"号牌颜色 {color} 不是登记的颜色")
        # the officer read the plate off the images: the camera's doubts about it go, every
        # other doubt stays (and keeps the case from a penalty)
        was = old.detection
        reasons = [r for r in was.reasons if not r.startswith("plate:")]
        det = was.model_copy(update={
            "plate": plate, "plate_color": color or was.plate_color, "plate_status": "read",
            "reasons": reasons, "enforceable": was.enforceable or not reasons})  # fmt: skip
        result = await rules.process([Incoming(DETECTIONS, 0, 0, None, det.to_json())])
        if result.dead:
            raise ValueError(f"更正后的事实无法判定：{result.dead[0].value!r}")
        found = [Violation.model_validate_json(o.value) for o in result.out]
        decided = next((v for v in found if v.violation_code == old.violation_code), None)
        if decided is None:
            raise ValueError("按更正后的车牌，该通过不构成此违法行为（如持有效许可）：请驳回")
        return decided

    return redecide


def rejudger(settings: Settings, store: CaseStore) -> Rejudge:
    """The rules deciding a pass again under the baseline in force on a later day (Art. 37):
    that version alone, made to apply to the pass date; everything else (history, permits,
    tolerances) as the rules stage does it."""
    baselines = load_baselines(settings.baselines)

    async def rejudge(old: Violation, day: dt.date) -> Violation | None:
        now = {j: [(b.model_copy(update={"effective_from": dt.date.min, "effective_until": None}),
                    h) for b, h in versions if b.in_force_on(day)]
               for j, versions in baselines.items()}  # fmt: skip
        noon = dt.datetime.combine(day, dt.time(4), dt.UTC)  # the decision day, 12:00 Beijing
        rules = RulesStage(now, registry_of(settings), store, clock=lambda: noon)
        result = await rules.process([Incoming(DETECTIONS, 0, 0, None, old.detection.to_json())])
        found = [Violation.model_validate_json(o.value) for o in result.out]
        return next((v for v in found if v.violation_code == old.violation_code), None)

    return rejudge


def document_sealer(settings: Settings, clock: Clock = wall_clock) -> Sealer:
    """The sealer of the agency's documents; the first start makes its key and certificate."""
    ev = settings.evidence
    return Sealer.at_first_start(ev.document_key, ev.document_cert, ev.agency, clock())


async def open_console(settings: Settings, clock: Clock = wall_clock) -> tuple[Console, CaseStore]:
    """The console's parts on the configured database; close the store when done."""
    ep = services.endpoints(settings)
    store = await CaseStore.connect(ep.database_url, size=8)
    await store.migrate()
    signer = Signer.load(settings.evidence.key)
    custody = PackageCustody(settings.evidence.dir, signer)
    cs = console_settings(settings)
    owners = settings.owners.load()
    lifecycle = procedure_lifecycle(store.pool, custody, cs.policy(), owners, cs.payment_code,
                                    rejudger(settings, store),
                                    redecide=redecider(settings, store, clock), clock=clock)  # fmt: skip
    waterways = load_waterways(settings.waterways) if settings.waterways.is_file() else None
    registry = registry_of(settings)
    squads = (
        load_squads(settings.squads, registry, waterways) if settings.squads.is_file() else None
    )
    geojson = load_map(settings.map) if settings.map.is_file() else None
    console = Console(store.pool, lifecycle, settings.evidence.dir, secure_cookies=cs.tls(),
                      registry=registry, waterways=waterways, squads=squads, geojson=geojson,
                      blobs=BlobStore(settings.var_dir / "blobs"), sweep_s=cs.dispatch_sweep_s,
                      public_url=public_url(cs, cs.host, cs.port),
                      payment_secret=cs.payment_secret.get_secret_value() if cs.payment_secret
                      else None,
                      sealer=document_sealer(settings, clock))  # fmt: skip
    console.credit, console.credit_sweep_s = (
        credit_of(settings, store.pool, clock),
        cs.credit_sweep_s,
    )
    console.weighings_years = cs.weighings_keep_years
    file_on_close(console, settings.var_dir / "casefiles", signer)  # 电子案卷 on closing
    chaogao_on_close(console, settings.chaogao.outbound(settings.var_dir))  # then the 抄告
    return console, store


def credit_of(settings: Settings, pool: Any, clock: Clock = wall_clock) -> Credit:
    """The credit workflow (cases/credit.py) with the agency's calendar, fleets and settings."""
    cs = console_settings(settings)
    return Credit(pool, load_calendar(cs.holidays), cs.policy().tz, settings.evidence.agency,
                  settings.owners.fleets(), cs.credit_repair_on_commitment, clock)  # fmt: skip


LOCAL = frozenset({"127.0.0.1", "localhost", "::1"})


def public_url(cs: ConsoleSettings, host: str, port: int) -> str:
    """Where notices send the party: console.public_url; on localhost only, the console's own
    address may stand in for it. Never a request's Host header."""
    if cs.public_url is not None:
        return str(cs.public_url)
    if host not in LOCAL:
        raise UsageError(f"console.public_url is required when the console listens on {host}: "
                         "the notices print it as the party's address")  # fmt: skip
    return f"http://{host}:{port}"


async def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    import uvicorn

    cs = console_settings(settings)
    host, port = host or cs.host, port or cs.port
    address = public_url(cs, host, port)  # before anything opens
    console, store = await open_console(settings)
    console.public_url = address
    try:
        config = uvicorn.Config(create_app(console), host=host, port=port, server_header=False,
                                log_level="warning", proxy_headers=False,
                                timeout_graceful_shutdown=2)  # open live feeds end  # fmt: skip
        server = uvicorn.Server(config)
        print(f"console at http://{config.host}:{config.port}", file=sys.stderr)
        await server.serve()
    finally:
        await store.close()
    return 0


async def add_user(
    settings: Settings,
    username: str,
    roles: list[str],
    password: str,
    display_name: str = "",
    badge_no: str | None = None,
    legal_cert_no: str | None = None,
) -> None:
    """A new account; ``badge_no``: its 执法证号 (Art. 42), needed to be named on a notice;
    ``legal_cert_no``: its 法律职业资格证书编号 (Art. 58 para 2), needed for 法制审核."""
    store = await CaseStore.connect(services.endpoints(settings).database_url, size=2)
    try:
        await store.migrate()
        await Accounts(store.pool).create(username, roles, password, display_name)
        if badge_no:
            await Accounts(store.pool).set_badge(username, badge_no)
        if legal_cert_no:
            await Accounts(store.pool).set_legal_cert(username, legal_cert_no)
    finally:
        await store.close()


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("console", help="the web console (officers, legal review, command center)")
    c.add_argument("--host", help="default console.host of the settings (127.0.0.1)")
    c.add_argument("--port", type=int, help="default console.port of the settings (8080)")
    csub = c.add_subparsers(dest="action", parser_class=parser_class)
    u = csub.add_parser("add-user", help="an account; the password is read from the terminal"
                        " or $OFFSITE_CONSOLE_PASSWORD")  # fmt: skip
    u.add_argument("username", metavar="NAME")
    u.add_argument("--role", action="append", required=True, choices=sorted(ROLES),
                   help="repeat for several roles")  # fmt: skip
    u.add_argument("--display-name", default="", help="the name shown in the console")
    u.add_argument("--badge", default=None, help="the officer's 执法证号 (Art. 42)")
    u.add_argument("--legal-cert", default=None, help="the legal reviewer's 法律职业资格证书编号"
                   " (Art. 58 para 2: needed to approve in 法制审核)")  # fmt: skip


def command(args: argparse.Namespace, settings: Settings) -> int:
    """``offsite console`` and ``offsite console add-user``."""
    if args.action != "add-user":
        return asyncio.run(serve(settings, args.host, args.port))
    password = os.environ.get("OFFSITE_CONSOLE_PASSWORD") or getpass.getpass("password: ")
    try:
        asyncio.run(add_user(settings, args.username, args.role, password, args.display_name,
                             args.badge, args.legal_cert))  # fmt: skip
    except AccountError as exc:
        raise UsageError(str(exc)) from exc
    print(f"account {args.username}: {', '.join(ROLES[r] for r in sorted(set(args.role)))}")
    return 0


__all__ = ["ConsoleSettings", "PackageCustody", "add_parser", "command", "serve"]

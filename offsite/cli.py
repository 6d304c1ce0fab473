"""The `offsite` command line."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from cases.credit import KIND_ZH
from cases.credit import STATUS_ZH as CREDIT_STATUS
from events import ConfigError, OffsiteError, UsageError, export_schemas
from ingest.formats import FORMATS

from . import chaogao as chaogao_cli
from . import console as console_cli
from . import dlq, logs, services
from .config import Settings, load_settings
from .pipeline import STAGES, RunReport, run

FORMAT_NAMES = tuple(FORMATS)  # station formats: ingest import, replay --format


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def _drift(text: str) -> tuple[str, float, float]:
    """DEVICE[,HOURS[,PCT]]: a WIM device reading PCT % heavy from HOURS after the start."""
    device, *rest = text.split(",")
    try:
        hours, pct = float(rest[0]) if rest else 0.0, float(rest[1]) if len(rest) > 1 else 4.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"not DEVICE[,HOURS[,PCT]]: {text!r}") from None
    if not device or len(rest) > 2 or hours < 0:
        raise argparse.ArgumentTypeError(f"not DEVICE[,HOURS[,PCT]]: {text!r}")
    return device, hours, pct


def _aware(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset, e.g. +08:00: {text!r}")
    return value


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    return host.strip("[]"), int(port)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="offsite", description="Non-site enforcement (非现场执法) pipeline.")
    p.add_argument("--config", type=Path, help="settings file (default configs/offsite.yaml)")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="services up, simulated traffic, pipeline, cases printed")
    demo.add_argument("--vehicles", type=_positive_int, default=400)
    demo.add_argument("--vessels", type=_positive_int, default=10,
                      help="generated vessels of the waterway traffic (0 is not allowed: use "
                           "--no-water)")  # fmt: skip
    demo.add_argument("--no-water", action="store_true", help="road traffic only")
    demo.add_argument("--seed", type=int, default=20261122)
    demo.add_argument("--no-console", action="store_true",
                      help="end after the cases instead of serving the console")  # fmt: skip

    svc = sub.add_parser("services", help="embedded broker and PostgreSQL under var/")
    svc.add_argument("action", choices=("up", "down", "status"))

    r = sub.add_parser("run", help="run pipeline stages against the configured broker and database")
    r.add_argument("--stage", action="append", choices=STAGES, help="repeatable; default: all")
    r.add_argument("--until-idle", action="store_true",
                   help="stop once every stage has processed its inputs to their end offsets")  # fmt: skip
    r.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="with --until-idle: give up after this long, naming what is left "
                        "(default pipeline.drain_timeout_s)")  # fmt: skip

    rp = sub.add_parser("replay", help="stream recorded files (JSONL records, NMEA logs) into"
                        " the raw topics")  # fmt: skip
    rp.add_argument("files", nargs="+", type=Path,
                    help="*.jsonl records; *.nmea / *.ais AIS logs go to water.ais.raw")  # fmt: skip
    rp.add_argument("--topic", help="road.wim, road.anpr, road.reweigh, water.camera or water.ais.raw "
                    "(default: from the file name)")  # fmt: skip
    rp.add_argument("--speed", type=float, help="pace by the records' ts; 1.0 = recorded speed")
    rp.add_argument("--format", choices=FORMAT_NAMES,
                    help="the files are in a station format: as `offsite ingest import`")  # fmt: skip
    rp.add_argument("--receiver", help="NMEA logs: the AIS receiver id (default: the file's stem)")
    rp.add_argument("--received", type=_aware,
                    help="NMEA logs: receive time of lines without a tag block (default: now)")  # fmt: skip

    sim = sub.add_parser("simulate", help="synthetic traffic with ground truth")
    sim.add_argument("--vehicles", type=_positive_int, default=500)
    sim.add_argument("--seed", type=int, default=20261122)
    sim.add_argument("--overload-share", type=_share, default=0.25)
    sim.add_argument("--start", type=_aware, help="first pass, ISO 8601 with offset")
    sim.add_argument("--out", type=Path, help="write JSONL files here instead of producing")
    sim.add_argument("--truth", type=Path, help="ground truth JSONL (default var/sim/truth.jsonl)")
    sim.add_argument("--no-images", action="store_true", help="skip the JPEGs (faster)")
    sim.add_argument("--no-leads", action="store_true",
                     help="no injected cloned plates, night coaches or hub shuttles")  # fmt: skip
    sim.add_argument("--vessels", type=_positive_int, default=24,
                     help="generated vessels of the waterway traffic, beside the registry's "
                          "and the injected cases (AIS from the receivers, checkpoint captures)")  # fmt: skip
    sim.add_argument("--no-water", action="store_true", help="road traffic only")
    sim.add_argument("--drift", type=_drift, metavar="DEVICE[,HOURS[,PCT]]",
                     help="a WIM device whose scale reads PCT %% (default 4) heavy from HOURS"
                          " after the first pass; --score reports what the drift watch did")  # fmt: skip
    sim.add_argument("--score", action="store_true",
                     help="run the pipeline, then print precision and recall per detector")  # fmt: skip

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=("migrate",))

    rules = sub.add_parser("rules", help="discretion baselines, offline")
    rsub = rules.add_subparsers(dest="action", required=True, parser_class=_Parser)
    chk = rsub.add_parser("check", help="validate a baseline file and print its table; without"
                          " one, every configured baseline and the sites' jurisdictions")  # fmt: skip
    chk.add_argument("file", type=Path, nargs="?")
    ev = rsub.add_parser(
        "evaluate", help="road.wim records or detections (JSONL, stdin) → decisions"
    )
    ev.add_argument("--baseline", type=Path, required=True)
    ev.add_argument("--as-measured", action="store_true",
                    help="take each record as admissible and its values as final (no registry)")  # fmt: skip
    ev.add_argument("--at", type=_aware, metavar="TIME",
                    help="decide as at this time, ISO 8601 with offset (default: now)")  # fmt: skip

    keys = sub.add_parser("keys", help="the Ed25519 key that signs evidence packages")
    keys.add_argument("action", choices=("create", "list"))
    keys.add_argument("--path", type=Path, help="default: evidence.key of the settings")

    evd = sub.add_parser("evidence", help="evidence packages")
    evd.add_argument("action", choices=("verify",))
    evd.add_argument("path", type=Path, help="a package directory (or a folder of packages)")
    evd.add_argument("--trusted-key", action="append", metavar="KEY_ID",
                     help="accept only packages signed by these key ids (repeatable)")  # fmt: skip

    case = sub.add_parser("case", help="one case")
    case.add_argument("action", choices=("replay",))
    case.add_argument("case_id")
    case.add_argument("--baseline", type=Path, help="replay under this baseline file instead")

    dlq.add_parser(sub, _Parser, _aware)
    console_cli.add_parser(sub, _Parser)
    # issue #25: the bank's payments (罚缴分离), matched to decisions; importing twice is harmless
    pay = sub.add_parser("payments", help="payments of fines reported by the bank")
    psub = pay.add_subparsers(dest="action", required=True, parser_class=_Parser)
    pim = psub.add_parser("import", help="import a bank file (CSV with a header, or JSON list)")
    pim.add_argument("file", type=Path, help="rows: bank_ref, decision_no, amount, paid_on")

    # issue #25: the signature on the agency's PDF documents (cases/sealing.py), checked offline
    doc = sub.add_parser("documents", help="the agency's signed PDF documents")
    dsub_ = doc.add_subparsers(dest="action", required=True, parser_class=_Parser)
    dver = dsub_.add_parser("verify", help="check a PDF's signature: who signed it and when")
    dver.add_argument("file", type=Path, help="a decision, notice, receipt or report PDF")
    dver.add_argument("--cert", type=Path,
                      help="trust this certificate (default: evidence.document_cert)")  # fmt: skip

    sch = sub.add_parser("schemas", help="JSON Schemas of the message contracts")
    sch.add_argument("action", choices=("export",))
    sch.add_argument("--dir", type=Path, default=Path("configs/schemas"))

    ing = sub.add_parser("ingest", help="sensor data in: HTTP gateway, folder of uploads")
    isub = ing.add_subparsers(dest="action", required=True, parser_class=_Parser)
    srv = isub.add_parser("serve", help="HTTP gateway for stations and cameras (JSON + JPEG)")
    srv.add_argument("--host", help="default gateway.host of the settings (127.0.0.1)")
    srv.add_argument("--port", type=int, help="default gateway.port of the settings (8090)")
    wat = isub.add_parser("watch", help="send each completed JSON + JPEG set of a folder")
    wat.add_argument("dir", type=Path)
    wat.add_argument("--device", help="the folder is this device's: only its records are taken")
    wat.add_argument("--once", action="store_true", help="one pass over the folder, then exit")
    wat.add_argument("--format", choices=FORMAT_NAMES,
                     help="each file is a body in this station format (offsite ingest formats)")  # fmt: skip
    ais = isub.add_parser("ais", help="an AIS receiver feed (NMEA lines over TCP or UDP) into"
                          " water.ais.raw")  # fmt: skip
    ais.add_argument("--listen", type=_host_port, required=True, metavar="HOST:PORT")
    ais.add_argument("--udp", action="store_true", help="datagrams instead of a TCP stream")
    ais.add_argument("--receiver", help="the receiver id (default: the peer's address)")
    # station formats (ingest.formats)
    isub.add_parser("formats", help="the station formats the gateway and import take")
    imp = isub.add_parser("import", help="files in a station format (e.g. FHWA TMG W records) "
                          "into the raw topics, through the format's adapter")  # fmt: skip
    imp.add_argument("--format", required=True, choices=FORMAT_NAMES)
    imp.add_argument("files", nargs="+", type=Path)
    sig = isub.add_parser("signals", help="a control station's signal log (JSONL: section_id,"
                          " direction, ts, shown go|stop) into the case store, for 冲关")  # fmt: skip
    sig.add_argument("file", type=Path)
    oap = isub.add_parser("openapi", help="the gateway's OpenAPI document")
    oap.add_argument("--out", type=Path, help="write it here instead of stdout")

    dev = sub.add_parser("devices", help="device health (last message, certificate, state);"
                         " with `key`, a device's gateway credential")  # fmt: skip
    dsub = dev.add_subparsers(dest="action", parser_class=_Parser)
    dkey = dsub.add_parser("key", help="a device's API key for the gateway (kept only as a hash)")
    dkey.add_argument("op", choices=("create", "revoke"))
    dkey.add_argument("device_id", metavar="ID")
    dkey.add_argument("--key-id", help="with revoke: only this key (default: all of the device)")
    dsub.add_parser("drift", help="each WIM device lane's drift watch (reference, CUSUM, alarm)")
    # issue #26: what the agency publishes
    pub = sub.add_parser("publish", help="what the agency publishes (公示)")
    pubsub = pub.add_subparsers(dest="action", required=True, parser_class=_Parser)
    pdev = pubsub.add_parser("devices", help="the 通告 of the monitoring points (HTML and PDF), "
                             "from the registries")  # fmt: skip
    pdev.add_argument("--out", type=Path, help="folder (default <var_dir>/publish)")
    pdec = pubsub.add_parser("decisions", help="双公示: one day's penalty decisions in the 29 "
                             "columns of the national format (CSV and JSON)")  # fmt: skip
    pdec.add_argument("--day", type=dt.date.fromisoformat, help="local day (default today)")
    pdec.add_argument("--out", type=Path, help="folder (default <var_dir>/publish)")
    cf = sub.add_parser("casefile", help="a closed case's electronic file (电子案卷)")
    cfsub = cf.add_subparsers(dest="action", required=True, parser_class=_Parser)
    cfx = cfsub.add_parser("export", help="write the file of a closed case (folder and zip)")
    cfx.add_argument("case_id")
    cfx.add_argument("--out", type=Path, help="folder (default <var_dir>/casefiles)")
    cfv = cfsub.add_parser("verify", help="check a case file offline (signature, every file)")
    cfv.add_argument("path", type=Path)
    # issue #26 must-have 7: the statistics (统计报表)
    st = sub.add_parser("stats", help="the agency's statistics by period and site (统计报表)")
    st.add_argument("--from", dest="first", type=dt.date.fromisoformat, required=True,
                    help="first local day (Beijing), YYYY-MM-DD")  # fmt: skip
    st.add_argument("--to", dest="last", type=dt.date.fromisoformat, required=True,
                    help="last local day, included")  # fmt: skip
    st.add_argument("--site", help="one site or waterway place (default: each, and the total)")
    st.add_argument("--xlsx", type=Path, help="also write the figures as this XLSX workbook")
    # issue #26 must-have 6: the 严重失信 list (cases/credit.py)
    cr = sub.add_parser("credit", help="the 严重失信 list of 超限 transport and 信用修复")
    crsub = cr.add_subparsers(dest="action", required=True, parser_class=_Parser)
    crl = crsub.add_parser("list", help="the credit entries (drafts, objections, the list)")
    crl.add_argument("--status", choices=tuple(CREDIT_STATUS), help="only entries in this state")
    crs = crsub.add_parser("sweep", help="make the drafts, listings and removals due as of a day")
    crs.add_argument("--as-of", type=dt.date.fromisoformat, help="local day (default today)")
    chaogao_cli.add_parser(sub, _Parser)  # 抄告 (Art. 44, 45): offsite/chaogao.py
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        logs.setup(json_lines=settings.log_format == "json")
        return _dispatch(args, settings)
    except ConfigError as exc:
        print(f"offsite: config error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"offsite: error: {exc}", file=sys.stderr)
        return 2
    except OffsiteError as exc:
        print(f"offsite: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _devices(settings: Settings, drift: bool = False) -> int:
    from detectors.drift import DriftState, drift_table
    from detectors.health import DeviceState, table
    from sinks import CaseStore

    from .config import registry_of

    store = await CaseStore.connect(services.endpoints(settings).database_url)
    try:
        await store.migrate()
        states = {k: DeviceState(*v) for k, v in (await store.device_states()).items()}
        drifts = {k: DriftState.load(v) for k, v in (await store.drift_states()).items()}
    finally:
        await store.close()
    print("\n".join(drift_table(drifts) if drift else table(registry_of(settings), states)))
    return 0


async def _casefile_export(settings: Settings, case_id: str, out: Path | None) -> int:
    """`offsite casefile export CASE_ID`: the closed case's file, signed with the evidence key."""
    from console.casefile import NotClosed, export_casefile
    from evidence import Signer

    from .console import open_console

    console, store = await open_console(settings)
    try:
        folder = await export_casefile(console, case_id, out or settings.var_dir / "casefiles",
                                       Signer.load(settings.evidence.key))  # fmt: skip
    except NotClosed:
        raise UsageError(f"case {case_id} does not exist or is not closed") from None
    finally:
        await store.close()
    print(f"{folder}\n{folder.with_suffix('.zip')}")
    return 0


def _casefile_verify(path: Path, keyring_path: Path) -> int:
    """`offsite casefile verify DIR`: every problem, one a line; exit 1 when there is one."""
    from cases.casefile import verify_casefile
    from evidence import load_keyring

    keyring = load_keyring(keyring_path) if keyring_path.exists() else None
    if keyring is None:
        print(f"no keyring at {keyring_path}: checked for self-consistency only, not for who "
              "signed")  # fmt: skip
    problems = verify_casefile(path, keyring)
    print("\n".join(f"{path}: {p}" for p in problems) or f"{path}: ok")
    return 1 if problems else 0


async def _credit(settings: Settings, action: str, status: str | None, as_of: dt.date | None
                  ) -> int:  # fmt: skip
    """`offsite credit list|sweep`: the entries one a line; the sweep's drafts, listings and
    removals as of a day (exit 3 while another process sweeps)."""
    from sinks import CaseStore

    from .console import console_settings, credit_of

    store = await CaseStore.connect(services.endpoints(settings).database_url)
    try:
        await store.migrate()
        credit = credit_of(settings, store.pool)
        if action == "sweep":
            day = as_of or dt.datetime.now(console_settings(settings).policy().tz).date()
            done = await credit.sweep(day)
            if done is None:
                print("another process is sweeping the credit list; nothing done")
                return 3
            print(f"credit sweep as of {day}: {len(done.drafted)} drafted, {len(done.held)} held "
                  f"for review, {len(done.listed)} listed, {len(done.removed)} removed")  # fmt: skip
            return 0
        for e in await credit.entries([status] if status else CREDIT_STATUS):
            listed = f"  列入{e['listed_on']}" if e["listed_on"] else ""
            print(f"{e['entry_id']}  {CREDIT_STATUS[e['status']]}  {KIND_ZH[e['kind']]}  {e['subject']}  "
                  f"{e['name'] or ''}  拟列入{e['drafted_on']} 异议截止{e['objection_due']}"
                  f"{listed}  {e['reason']}")  # fmt: skip
        return 0
    finally:
        await store.close()


async def _publish_decisions(settings: Settings, day: dt.date | None, out: Path) -> int:
    """`offsite publish decisions`: decisions-DAY.csv (the 29 columns of the day's decisions
    not revoked), withdrawals-DAY.csv (the revoked ones withdrawn, with the public reason) and
    decisions-DAY.json (both, each with its case and last day); recorded as published today."""
    from cases.publication import WITHDRAWAL_COLUMNS, export_day, to_csv
    from sinks import CaseStore

    from .config import load_calendar
    from .console import console_settings

    cs = console_settings(settings)
    tz = cs.policy().tz
    today = dt.datetime.now(tz).date()
    day = day or today
    store = await CaseStore.connect(services.endpoints(settings).database_url)
    try:
        await store.migrate()
        found = await export_day(store.pool, day, today, tz, load_calendar(cs.holidays))
    finally:
        await store.close()
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        out / f"decisions-{day}.csv",
        out / f"withdrawals-{day}.csv",
        out / f"decisions-{day}.json",
    ]
    paths[0].write_text(to_csv([f["row"] for f in found["decisions"]]), encoding="utf-8")
    paths[1].write_text(to_csv(found["withdrawals"], WITHDRAWAL_COLUMNS), encoding="utf-8")
    paths[2].write_text(json.dumps(found, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{len(found['decisions'])} decisions and {len(found['withdrawals'])} withdrawals of "
          f"{day}: {', '.join(map(str, paths))}")  # fmt: skip
    return 0


async def _stats(
    settings: Settings, first: dt.date, last: dt.date, site: str | None, xlsx: Path | None
) -> int:
    """`offsite stats`: the figures printed, one a line; with --xlsx the workbook too."""
    from cases.statistics import statistics
    from console.stats import kept_from, lines, places, workbook

    from .console import open_console

    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    console, store = await open_console(settings)
    try:
        s = await statistics(store.pool, first, last, console.lifecycle.policy.tz, site=site,
                             casefile_dir=console.casefile_dir,
                             weighings_from=kept_from(console))  # fmt: skip
    finally:
        await store.close()
    names, road = places(console)
    print("\n".join(lines(s, names, road)))
    if xlsx is not None:
        xlsx.write_bytes(workbook(s, names, road))
        print(f"XLSX: {xlsx}")
    return 0


def _publish_devices(settings: Settings, out: Path) -> int:
    """`offsite publish devices`: the 通告 of the monitoring points as HTML and PDF."""
    from console.publicity import notice_html, notice_pdf, notice_view

    from .config import load_waterways, registry_of

    waterways = load_waterways(settings.waterways) if settings.waterways.exists() else None
    view = notice_view(registry_of(settings), waterways, settings.evidence.agency)
    out.mkdir(parents=True, exist_ok=True)
    (out / "devices-notice.html").write_text(notice_html(view), encoding="utf-8")
    (out / "devices-notice.pdf").write_bytes(notice_pdf(view))
    print(f"通告 of {len(view['roads'])} road sites and {len(view['water'])} waterway points: "
          f"{out / 'devices-notice.html'}, {out / 'devices-notice.pdf'}")  # fmt: skip
    return 0


async def _payments(settings: Settings, path: Path) -> int:
    """`offsite payments import FILE`: unreadable rows and rows with no decision are reported
    (exit 1); the others are stored once."""
    from cases.payments import import_payments, parse_payments
    from sinks import CaseStore

    rows, bad = parse_payments(path)
    store = await CaseStore.connect(services.endpoints(settings).database_url)
    try:
        await store.migrate()
        report = await import_payments(store.pool, rows, path.name, dt.datetime.now(dt.UTC))
    finally:
        await store.close()
    print("\n".join(report.lines() + bad))
    return 1 if bad or report.unmatched else 0


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.verb == "services":
        if args.action == "up":
            ep = services.up(settings)
            print(f"broker   {ep.bootstrap}\npostgres {_redact(ep.database_url)}")
        elif args.action == "down":
            stopped = services.down(settings)
            print("stopped: " + (", ".join(stopped) or "nothing was running"))
        else:
            for name, state in services.status(settings).items():
                print(f"{name:9}{state}")
        return 0
    if args.verb == "rules":
        from events.clock import fixed_clock, wall_clock

        from .config import (
            baseline_files,
            check_jurisdictions,
            load_baseline,
            load_baselines,
            registry_of,
        )
        from .evaluate import check, evaluate

        if args.action == "check":
            if args.file is not None:
                check(args.file)
                return 0
            check_jurisdictions(settings.registry, registry_of(settings),
                                load_baselines(settings.baselines))  # fmt: skip
            for path in baseline_files(settings.baselines):
                check(path)
            print(f"every site of {settings.registry} has a baseline for its jurisdiction: "
                  + ", ".join(sorted(settings.baselines)))  # fmt: skip
            return 0
        baseline, digest = load_baseline(args.baseline)
        registry = None if args.as_measured else registry_of(settings)
        clock = wall_clock if args.at is None else fixed_clock(args.at)
        return 1 if evaluate(baseline, digest, sys.stdin, registry, clock=clock) else 0
    if args.verb == "keys" and args.action == "list":
        from evidence import load_keyring

        ring = load_keyring(settings.evidence.keyring)
        for kid, created in ring.created.items():
            print(f"{kid}  published {created}")
        print(f"{len(ring.keys)} keys in {settings.evidence.keyring}")
        return 0
    if args.verb == "keys":
        path = args.path or settings.evidence.key
        kid = create_key(path, settings.evidence.keyring)
        print(f"created {path} (key id {kid}); keep it secret, back it up. Its public key is in "
              f"{settings.evidence.keyring}: publish that file (公示)")  # fmt: skip
        return 0
    if args.verb == "evidence":
        return _verify(args.path, args.trusted_key, settings.evidence.keyring)
    if args.verb == "case":
        from evidence import replay_package

        path = settings.evidence.dir / args.case_id
        if not (path / "bag-info.txt").exists():
            raise UsageError(f"no evidence package for case {args.case_id} under {path.parent}")
        result = replay_package(path, args.baseline)
        print(json.dumps({"case_id": args.case_id, "matches": result.matches,
                          "differences": result.differences, "stored": result.stored,
                          "recomputed": result.recomputed}, ensure_ascii=False, indent=2))  # fmt: skip
        return 0 if result.matches else 1
    if args.verb == "chaogao":
        return asyncio.run(chaogao_cli.run(args, settings))
    if args.verb == "casefile" and args.action == "export":
        return asyncio.run(_casefile_export(settings, args.case_id, args.out))
    if args.verb == "casefile":
        return _casefile_verify(args.path, settings.evidence.keyring)
    if args.verb == "publish" and args.action == "decisions":
        return asyncio.run(_publish_decisions(settings, args.day,
                                              args.out or settings.var_dir / "publish"))  # fmt: skip
    if args.verb == "stats":
        return asyncio.run(_stats(settings, args.first, args.last, args.site, args.xlsx))
    if args.verb == "credit":
        return asyncio.run(_credit(settings, args.action, getattr(args, "status", None),
                                   getattr(args, "as_of", None)))  # fmt: skip
    if args.verb == "publish":
        return _publish_devices(settings, args.out or settings.var_dir / "publish")
    if args.verb == "devices" and args.action in (None, "drift"):
        return asyncio.run(_devices(settings, drift=args.action == "drift"))
    if args.verb == "ingest" and args.action == "ais":
        from sim.feed import ingest_ais

        host, port = args.listen

        def listening(address: tuple[str, int]) -> None:
            print(f"AIS feed on {'udp' if args.udp else 'tcp'}://{address[0]}:{address[1]}"
                  " → water.ais.raw", file=sys.stderr)  # fmt: skip

        n = asyncio.run(ingest_ais(settings, host, port, udp=args.udp, receiver_id=args.receiver,
                                   on_listening=listening))  # fmt: skip
        print(f"sent {n} lines")
        return 0
    if args.verb == "ingest" and args.action == "signals":
        from sim.feed import ingest_signals

        print(f"stored {asyncio.run(ingest_signals(settings, args.file))} new signal changes")
        return 0
    if args.verb in ("ingest", "devices"):
        from .gateway import command

        return command(args, settings)
    if args.verb == "console":
        return console_cli.command(args, settings)
    if args.verb == "dlq":
        return asyncio.run(dlq.command(args, settings))
    if args.verb == "payments":
        return asyncio.run(_payments(settings, args.file))
    if args.verb == "documents":
        return _verify_document(args.file, args.cert or settings.evidence.document_cert)
    if args.verb == "schemas":
        for path in export_schemas(args.dir):
            print(path)
        return 0
    if args.verb == "db":
        ep = services.endpoints(settings)
        applied = asyncio.run(_migrate(settings, ep))
        print("applied: " + (", ".join(applied) or "nothing, schema is current"))
        return 0
    if args.verb == "run":
        if args.timeout is not None and not args.until_idle:
            raise UsageError("--timeout applies only with --until-idle")
        if args.timeout is not None:
            pipeline = settings.pipeline.model_copy(update={"drain_timeout_s": args.timeout})
            settings = settings.model_copy(update={"pipeline": pipeline})
        ep = services.endpoints(settings)
        report = asyncio.run(_run_forever(settings, ep, args.stage or STAGES, args.until_idle))
        if args.until_idle:
            _print_run(report)
        return 0 if report.done or not args.until_idle else 130
    if args.verb == "replay" and args.format:
        if args.topic or args.speed or args.receiver or args.received:
            raise UsageError("--topic, --speed, --receiver and --received do not apply with "
                             "--format (its records say their topic and time)")  # fmt: skip
        from .gateway import import_files

        return asyncio.run(import_files(settings, args.format, args.files))
    if args.verb == "replay":
        from sim.feed import replay_files

        n = asyncio.run(replay_files(settings, args.files, args.topic, args.speed,
                                     receiver_id=args.receiver, received=args.received))  # fmt: skip
        print(f"replayed {n} messages")
        return 0
    if args.verb == "simulate":
        from sim.feed import simulate_traffic

        summary = asyncio.run(simulate_traffic(settings, args))
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    if args.verb == "demo":
        from .demo import demo

        vessels = 0 if args.no_water else args.vessels
        return asyncio.run(demo(settings, args.vehicles, args.seed, not args.no_console, vessels))
    raise UsageError(f"unknown verb {args.verb}")  # pragma: no cover


def _verify(path: Path, trusted: list[str] | None, keyring_path: Path) -> int:
    """Each package at ``path`` against the given key ids or, without them, the agency's
    keyring; with neither, only for being self-consistent (said so)."""
    from evidence import load_keyring, unfinished, verify_package

    keyring = None
    if trusted is None and keyring_path.exists():
        keyring = load_keyring(keyring_path)
    elif trusted is None:
        print(f"no keyring at {keyring_path}: checked for self-consistency only, not for who "
              "signed")  # fmt: skip

    if not path.exists():
        raise UsageError(f"no such package: {path}")
    leftovers = [] if (path / "bagit.txt").exists() else unfinished(path)
    bags = (
        [path]
        if (path / "bagit.txt").exists()
        else sorted(p.parent for p in path.glob("*/bagit.txt") if p.parent not in leftovers)
    )
    for tmp in leftovers:  # not packages: the evidence stage removes them when it starts
        print(f"{tmp}: unfinished write (left by a crash or in progress), not a package")
    if not bags and not leftovers:
        raise UsageError(f"no evidence package at {path}")
    broken = 0
    for bag in bags:
        problems = verify_package(bag, trusted_keys=trusted, keyring=keyring)
        broken += bool(problems)
        print(f"{bag}: " + ("intact" if not problems else "BROKEN"))
        for p in problems:
            print(f"  - {p}")
    return 1 if broken else 0


def _verify_document(path: Path, cert: Path) -> int:
    """The signature of the PDF at ``path``, checked against the agency's certificate."""
    from cases.sealing import load_certificate, verify_pdf

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    if not cert.exists():
        raise UsageError(f"no certificate at {cert}: give the agency's with --cert")
    found = verify_pdf(data, load_certificate(cert))
    when = found.signed_at.isoformat() if found.signed_at else "unknown"
    print(f"{path}: " + ("signature valid" if found.ok else "NOT VALID"))
    if found.signer:
        print(f"  signed by {found.signer} at {when}")
    for problem in found.problems:
        print(f"  - {problem}")
    return 0 if found.ok else 1


def create_key(path: Path, keyring_path: Path) -> str:
    """A new signing key at ``path``, its public key published in the keyring; its key id."""
    from evidence import Signer, generate_key, load_keyring

    kid = generate_key(path)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    load_keyring(keyring_path).add(keyring_path, Signer.load(path).public_key, today)
    return kid


async def _migrate(settings: Settings, ep: services.Endpoints) -> list[str]:
    from sinks import CaseStore

    store = await CaseStore.connect(ep.database_url)
    try:
        return await store.migrate()
    finally:
        await store.close()


async def _run_forever(
    settings: Settings, ep: services.Endpoints, stages: Sequence[str], until_idle: bool
) -> RunReport:
    from sinks.metrics import serve, watch_loop_lag

    p = settings.pipeline
    server = await serve(p.metrics_host, p.metrics_port) if p.metrics_port else None
    lag = asyncio.create_task(watch_loop_lag())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await run(settings, ep, stages, stop=stop, until_done=until_idle)
    finally:
        lag.cancel()
        if server is not None:
            server.close()


def _print_run(report: RunReport) -> None:
    if report.nothing_to_do:
        print("nothing to process: every stage had consumed its inputs to their end")
        return
    for name, s in report.stages.items():
        loaded = f", loaded in {s.loaded_s:.1f} s" if s.loaded_s and s.loaded_s >= 0.05 else ""
        print(f"{name:10} {s.messages:>8} messages in {s.batches} batches{loaded}")
    if report.done:
        print("done: every stage processed its inputs to their end offsets")
    else:
        print("stopped before every stage had processed its inputs")


def _redact(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, cred = head.partition("//")
    return f"{scheme}//{cred.split(':')[0]}:***@{tail}"


if __name__ == "__main__":
    sys.exit(main())

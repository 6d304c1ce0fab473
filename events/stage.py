"""The contract between a pipeline stage and the runner that feeds it from Kafka.

A stage is a pure batch function over messages: it never touches the broker. The runner
(offsite.kafka) polls a batch, calls :meth:`Stage.process`, produces what it returns with
``acks=all``, sends dead letters, calls :meth:`Stage.acknowledged`, and only then commits input
offsets — never beyond :meth:`Stage.held` — so a crash anywhere replays the batch.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydantic import ValidationError

from .errors import ServiceError
from .models import DeadLetter, Message
from .topics import dlq

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None  # the broker's record time (when it was received)


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes


@dataclass
class StageResult:
    out: list[Outgoing] = field(default_factory=list)
    dead: list[Outgoing] = field(default_factory=list)
    # what the stage measured, for the runner's metrics: (name, labels, value), a counter's
    # increment or a histogram's observation; names are those of sinks.metrics.OBSERVED,
    # labels low-cardinality (site, detector — never an id or a plate)
    observed: list[tuple[str, tuple[str, ...], float]] = field(default_factory=list)


class Stage(Protocol):
    name: str
    inputs: tuple[str, ...]

    async def start(self) -> None:
        """Called once before the first message is read: load models and other heavy resources
        here, so that no batch waits on them."""
        ...

    async def process(self, batch: list[Incoming]) -> StageResult:
        """Called with each polled batch (in offset order per partition), through
        :func:`guarded`. Raising a retriable ServiceError stops the runner without committing:
        the batch is delivered again after restart. Whatever one record makes the stage raise
        must not stop it: see :func:`guarded`."""
        ...

    async def idle(self) -> StageResult:
        """Called when no message came for the idle interval, or when the stage has read its
        inputs to the end of a drain: flush what waits on time."""
        ...

    def held(self) -> dict[TopicPartition, int]:
        """Lowest offset per partition the stage still keeps in memory; commits stop there.
        A stage that holds something is not finished with its input, unless it also has
        ``waits_on_input() -> bool`` (optional) and that says what it holds waits on later
        input — event time, as the waterway stage's captures wait on AIS time — rather than on
        work the stage has yet to do. A stage that needs to know which partitions it reads
        (a watermark over all of them) may have ``assigned(partitions)``, also optional: the
        runner calls it whenever its assignment changes."""
        ...

    async def acknowledged(self, result: StageResult) -> None:
        """Called after ``result`` was acknowledged by the broker, before offsets commit."""
        ...

    async def close(self) -> None:
        """Called once when the runner stops, after a failure too: undo what is unfinished."""
        ...


class BaseStage:
    """Defaults for a stage that keeps nothing between batches: nothing to load, no idle work,
    nothing held back, nothing to do on acknowledgement or close. Stages override what they
    need."""

    name: str
    inputs: tuple[str, ...]
    # True: processing a message again, alone, gives what it gave in its batch (no state
    # between calls, idempotent effects), so :func:`guarded` may isolate a poison message
    isolable = False

    async def start(self) -> None:
        return None

    async def idle(self) -> StageResult:
        return StageResult()

    def held(self) -> dict[TopicPartition, int]:
        return {}

    async def acknowledged(self, result: StageResult) -> None:
        return None

    async def close(self) -> None:
        return None


M = TypeVar("M", bound=Message)


def decode_batch(
    model: type[M], batch: list[Incoming], stage: str
) -> tuple[list[tuple[M, Incoming]], list[Outgoing]]:
    """Validate every message of a batch as ``model``: the good ones with their message, and a
    dead letter (with the reason) for each one that fails."""
    good, dead = [], []
    for msg in batch:
        try:
            good.append((model.model_validate_json(msg.value), msg))
        except ValidationError as exc:
            dead.append(dead_letter(msg, validation_reason(exc), stage))
    return good, dead


def dead_letter(msg: Incoming, reason: str, stage: str) -> Outgoing:
    """The dead-letter record of ``msg``: its bytes as text (lossless for UTF-8) and the reason."""
    letter = DeadLetter(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key.decode("utf-8", "replace") if msg.key is not None else None,
        value=msg.value.decode("utf-8", "backslashreplace"),
        reason=reason,
        stage=stage,
    )
    return Outgoing(dlq(msg.topic), msg.key, letter.to_json())


def validation_reason(exc: ValidationError) -> str:
    """One line per error: ``field: message``; JSON syntax errors say so."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "json_invalid":
            parts.append(f"invalid JSON: {err['msg']}")
        else:
            parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


# the metric (sinks.metrics.OBSERVED) that counts records a stage raised on, by stage
POISON = "poison_records"


# SQLSTATE classes of a database that is away for now, not of a wrong statement: 08 connection
# exception, 53 insufficient resources, 57 operator intervention (a shutdown or restart)
AWAY_SQLSTATES = ("08", "53", "57")
_DRIVERS = ("asyncpg", "aiokafka")


def stops_batch(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the broker or the database that a retry of the whole
    batch may fix; anything else was caused by what a record holds. A driver's own error that
    escaped a stage unwrapped counts too (a PostgreSQL restart raises "the database system is
    shutting down", then a socket error, from inside asyncpg): taken for the record's fault, it
    would make every record of the outage a dead letter."""
    if isinstance(exc, ServiceError):
        return exc.retriable
    kind = type(exc)
    if kind.__module__.split(".")[0] in _DRIVERS and any(
        c.__name__ in ("InterfaceError", "InternalClientError") for c in kind.__mro__
    ):
        return True  # a connection closed or broken under a query
    if str(getattr(exc, "sqlstate", "") or "")[:2] in AWAY_SQLSTATES:
        return True
    return isinstance(exc, OSError) and any(
        d in frame.filename for frame in traceback.extract_tb(exc.__traceback__) for d in _DRIVERS
    )


def poison_letter(msg: Incoming, exc: Exception, stage: str) -> Outgoing:
    """The dead letter of a message ``stage`` raised on: the exception is the reason."""
    return dead_letter(msg, f"{stage} failed on this message: {type(exc).__name__}: {exc}", stage)


async def guarded(stage: Stage, batch: list[Incoming]) -> StageResult:
    """``stage.process(batch)``, where no record stops the stage (issue #28).

    A stage that keeps nothing between calls (``isolable``: rules, evidence, leads, lead-store,
    health) is called again on each message alone when its batch raised: its outputs carry ids
    derived from their inputs and its effects are idempotent, so the good messages come out as
    they would have, and one it still raises on alone becomes a dead letter with the exception
    as its reason, counted in :data:`POISON`. A stage with state between calls (the WIM–ANPR
    matcher, the water tracks, the case batch awaiting its alerts, the AIS reassembler, which
    rejects every line it cannot use as data) cannot see a message twice: it isolates its
    records itself, so what still raises here is a bug, and stops the runner like a retriable
    ServiceError (broker, database), which always does: the batch is delivered again after
    restart. tests/unit/test_poison_property.py feeds every stage messages at and past their
    bounds."""
    try:
        return await stage.process(batch)
    except Exception as exc:
        if stops_batch(exc) or not getattr(stage, "isolable", False):
            raise
    result = StageResult()
    for msg in batch:
        try:
            one = await stage.process([msg])
        except Exception as exc:
            if stops_batch(exc):
                raise
            result.dead.append(poison_letter(msg, exc, stage.name))
            result.observed.append((POISON, (stage.name,), 1))
            continue
        result.out += one.out
        result.dead += one.dead
        result.observed += one.observed
    return result

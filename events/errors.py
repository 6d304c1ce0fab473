"""The one error tree of offsite. Upper layers never see driver exceptions.

OffsiteError
├── ConfigError        a configuration file or setting is wrong (file, line, field)
├── ServiceError       the broker or database failed; ``retriable`` says if a retry may help
│   ├── BrokerError
│   └── DatabaseError  not retriable when the database refused a value a record holds
├── UsageError         a bad command-line argument
├── UnfinishedError    a run did not finish its input within its time-out (``lags`` says where)
├── EvidenceError      a package cannot be built or read (evidence.errors)
└── SealError          the documents' signing key or certificate is unusable (cases.sealing)
"""


class OffsiteError(Exception):
    """Root of every error offsite raises on purpose."""


class ConfigError(OffsiteError):
    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}")


class ServiceError(OffsiteError):
    """``retriable``: a retry of the same work may succeed (the service was down or busy);
    False when the service refused what a record holds (a value PostgreSQL cannot store), which
    no retry changes: a stage dead-letters that record and goes on (issue #28)."""

    def __init__(self, *args: object, retriable: bool = True) -> None:
        super().__init__(*args)
        self.retriable = retriable


class BrokerError(ServiceError):
    pass


class DatabaseError(ServiceError):
    pass


class UsageError(OffsiteError):
    pass


class UnfinishedError(OffsiteError):
    """A run to the end of its input timed out. ``lags``: stage → (topic, partition) → messages
    not yet processed; ``states``: stage → what it was doing (e.g. inside a batch for 40 s)."""

    def __init__(
        self,
        timeout_s: float,
        lags: dict[str, dict[tuple[str, int], int]],
        states: dict[str, str],
    ) -> None:
        self.timeout_s, self.lags, self.states = timeout_s, lags, states
        parts = []
        for stage in sorted(set(lags) | set(states)):
            left = [f"{t}[{p}] {n} left" for (t, p), n in lags.get(stage, {}).items()]
            parts.append(f"{stage}: " + ", ".join([*left, states.get(stage, "")]).strip(", "))
        super().__init__(
            f"the run did not finish within {timeout_s:g} s; unfinished stages: " + "; ".join(parts)
        )

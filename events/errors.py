"""The one error tree of offsite. Upper layers never see driver exceptions.

OffsiteError
├── ConfigError        a configuration file or setting is wrong (file, line, field)
├── ServiceError       the broker or database failed; ``retriable`` says if a retry may help
│   ├── BrokerError
│   └── DatabaseError
├── UsageError         a bad command-line argument
└── EvidenceError      a package cannot be built or read (evidence.errors)
"""


class OffsiteError(Exception):
    """Root of every error offsite raises on purpose."""


class ConfigError(OffsiteError):
    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}")


class ServiceError(OffsiteError):
    retriable = True


class BrokerError(ServiceError):
    pass


class DatabaseError(ServiceError):
    pass


class UsageError(OffsiteError):
    pass

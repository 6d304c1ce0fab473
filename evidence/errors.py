"""The evidence branch of the offsite error tree.

OffsiteError
└── EvidenceError      a package cannot be built or read (missing image, checksum, key file)
"""

from events import OffsiteError


class EvidenceError(OffsiteError):
    """A package cannot be built or read; ``case_id`` names it when known.

    Never retriable by waiting: the input (image, key, existing package) must be fixed."""

    retriable = False

    def __init__(self, message: str, case_id: str | None = None) -> None:
        self.case_id, self.message = case_id, message
        super().__init__(f"{case_id}: {message}" if case_id else message)

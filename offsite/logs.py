"""Logs: one JSON object per line on stderr, with the stage, topic, partition, offset and ids a
line is about (``extra=``), and secrets never written: passwords in URLs and API keys are
masked before a line leaves the process."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

# the fields a log call may attach with extra=..., in this order
FIELDS = (
    "stage",
    "topic",
    "partition",
    "offset",
    "record_id",
    "case_id",
    "device_id",
    "capture_id",
    "reason",
)
_SECRETS = (
    (re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),  # postgresql://user:secret@host
    (re.compile(r"(?i)(bearer\s+|api[_-]?key[=: ]+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        line |= {k: getattr(record, k) for k in FIELDS if hasattr(record, k)}
        if record.exc_info:  # the exception's last line, not a stack trace per message
            line["error"] = redact(repr(record.exc_info[1]))
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(json_lines: bool = True, level: int = logging.WARNING) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(
        "%(levelname)s %(name)s: %(message)s"))  # fmt: skip
    logging.basicConfig(level=level, handlers=[handler], force=True)

"""Structured logs (issue #15 item 4): one JSON object per line with the fields a line is about;
secrets never written."""

from __future__ import annotations

import json
import logging

from offsite.logs import JsonFormatter, redact


def line(msg: str, *args: object, exc: BaseException | None = None, **extra: object) -> dict:
    record = logging.LogRecord("offsite.kafka", logging.WARNING, __file__, 1, msg, args,
                               (type(exc), exc, None) if exc else None)  # fmt: skip
    record.__dict__.update(extra)
    text = JsonFormatter().format(record)
    assert "\n" not in text
    return json.loads(text)


def test_a_line_is_one_json_object_with_its_fields() -> None:
    got = line("dead letter", stage="detect", topic="road.wim", partition=2, offset=17,
               reason="unknown site 'X'")  # fmt: skip
    assert (got["level"], got["logger"], got["msg"]) == ("warning", "offsite.kafka", "dead letter")
    assert (got["stage"], got["topic"], got["partition"], got["offset"]) == (
        "detect", "road.wim", 2, 17)  # fmt: skip
    assert got["ts"].endswith("+00:00")


def test_secrets_are_masked_and_an_error_is_one_line() -> None:
    url = "postgresql://offsite:s3cret-pass@db.example:5432/offsite"
    assert redact(url) == "postgresql://offsite:***@db.example:5432/offsite"
    assert redact("Authorization: Bearer abcdefgh12345678") == "Authorization: Bearer ***"
    got = line("cannot connect to %s", url, exc=OSError(f"refused {url}"))
    assert "s3cret" not in json.dumps(got)
    assert got["error"] == "OSError('refused postgresql://offsite:***@db.example:5432/offsite')"

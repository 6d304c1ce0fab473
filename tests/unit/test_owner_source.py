"""Issue #25 must-have 1: the vehicle-owner source over HTTP (cases.party.HttpOwners) against a
real HTTP server on localhost (http.server in a thread, no mock): an owner found is the party;
a timeout, a 5xx, a refused token or a malformed answer is no party, with the reason."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from cases.party import HttpOwners, OwnerSourceError, Party
from events import ConfigError
from offsite.config import Settings, load_yaml
from offsite.testing import http_server

TOKEN = "s3cret"
ORG = {"kind": "organization", "name": "湖南示例物流有限公司", "id_number": "91430100MA4L00000F",
       "address": "湖南省长沙市示例区示例路1号"}  # fmt: skip
# plate → (status, body) the database answers; "hang": no answer until the test ends
Answer = tuple[int, bytes] | str


@contextmanager
def owner_db(answers: dict[str, Answer]) -> Iterator[str]:
    """A provincial vehicle database on a free local port; yields its URL."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            q = parse_qs(urlsplit(self.path).query)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, body = 401, b'{"error": "token"}'
            else:
                answer = answers.get(q["plate"][0], (200, b'{"found": false}'))
                if answer == "hang":
                    release.wait()
                    return
                assert not isinstance(answer, str)
                status, body = answer
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as url:
        try:
            yield f"{url}/v1/vehicle-owner"
        finally:
            release.set()  # a hung answer ends with the test


def found(owner: dict[str, str]) -> tuple[int, bytes]:
    return 200, json.dumps({"found": True, "owner": owner}, ensure_ascii=False).encode()


def ask(url: str, plate: str, token: str = TOKEN) -> Party | None:
    return asyncio.run(HttpOwners(url, token, timeout_s=0.5).owner(plate, "yellow"))


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(OwnerSourceError) as exc:
        call()
    return str(exc.value)


def test_an_owner_found_is_the_party_and_an_unknown_vehicle_is_none() -> None:
    with owner_db({"湘A12345": found(ORG)}) as url:
        party = ask(url, "湘A12345")
        assert party is not None and party.name == ORG["name"] and party.kind == "organization"
        assert ask(url, "湘Z99999") is None  # {"found": false}


def test_a_failing_or_malformed_answer_is_no_party_with_the_reason() -> None:
    bad_id = {**ORG, "id_number": "91430100MA4L00000G"}  # check character wrong
    answers: dict[str, Answer] = {
        "湘A00001": (503, b"busy"), "湘A00002": (200, b"<html>"), "湘A00003": found(bad_id),
        "湘A00004": (200, b'{"found": true}'), "湘A00005": "hang",
    }  # fmt: skip
    with owner_db(answers) as url:
        assert "HTTP 503" in refused(lambda: ask(url, "湘A00001"))
        assert "不是 JSON" in refused(lambda: ask(url, "湘A00002"))
        assert "校验位" in refused(lambda: ask(url, "湘A00003"))
        assert "应答格式有误" in refused(lambda: ask(url, "湘A00004"))
        assert "0.5 秒内未应答" in refused(lambda: ask(url, "湘A00005"))
        assert "HTTP 401" in refused(lambda: ask(url, "湘A12345", token="wrong"))
    assert "无法连接" in refused(lambda: ask(url, "湘A12345"))  # the server is gone


def test_the_source_is_chosen_by_a_setting_checked_at_start_up(tmp_path: Path) -> None:
    good = tmp_path / "ok.yaml"
    good.write_text("owners:\n  source: http\n  url: http://127.0.0.1:9/o\n  token: t\n")
    assert isinstance(load_yaml(good, Settings).owners.load(), HttpOwners)
    bad = tmp_path / "offsite.yaml"
    bad.write_text("registry: configs/sites.yaml\nowners:\n  source: http\n  timeout_s: 2\n")
    with pytest.raises(ConfigError) as exc:
        load_yaml(bad, Settings)
    assert (exc.value.file, exc.value.line, exc.value.field) == (str(bad), 3, "owners")
    assert "url and token" in exc.value.message
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("owners:\n  source: ldap\n")
    with pytest.raises(ConfigError) as exc:
        load_yaml(wrong, Settings)
    assert exc.value.field == "owners.source" and exc.value.line == 2

"""Issue #28 rows 9 and 11: where the notice sends the party, and when the console is on TLS."""

from __future__ import annotations

import pytest

from events import UsageError
from offsite.config import ConsoleSettings
from offsite.console import public_url


def test_off_localhost_the_public_url_is_required() -> None:
    with pytest.raises(UsageError, match=r"console\.public_url is required"):
        public_url(ConsoleSettings(), "0.0.0.0", 8080)
    set_ = ConsoleSettings(public_url="https://zf.example.gov.cn")  # type: ignore[arg-type]
    assert public_url(set_, "0.0.0.0", 8080) == "https://zf.example.gov.cn/"
    # on localhost the console's own address stands in: never a request's Host header
    assert public_url(ConsoleSettings(), "127.0.0.1", 8081) == "http://127.0.0.1:8081"


def test_secure_cookies_follow_an_https_public_url_unless_set() -> None:
    assert not ConsoleSettings().tls()
    https = ConsoleSettings(public_url="https://zf.example.gov.cn")  # type: ignore[arg-type]
    assert https.tls()
    proxy = ConsoleSettings(public_url="http://10.0.0.5:8080", secure_cookies=True)  # type: ignore[arg-type]
    assert proxy.tls()
    assert not https.model_copy(update={"secure_cookies": False}).tls()

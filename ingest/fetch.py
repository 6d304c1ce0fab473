"""Fetching an image a station's record names by URL, only from where the operator allows.

``gateway.fetch_allow`` lists host names (``img.station.example``), and IP networks
(``10.20.0.0/16``, ``127.0.0.1``); an empty list fetches nothing. The address checked is the
one the connection actually reached (the socket's peer, after DNS), so a name that resolves
somewhere else later cannot lead the gateway elsewhere. No redirect is followed; the body is
read up to the gateway's image size limit and no further.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from .intake import Refused

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Fetcher:
    def __init__(self, allow: Sequence[str], max_bytes: int, timeout_s: float = 10.0) -> None:
        self.names = {a.lower() for a in allow if not _is_network(a)}
        self.networks: list[Network] = [ipaddress.ip_network(a, strict=False) for a in allow
                                        if _is_network(a)]  # fmt: skip
        self.max_bytes, self.timeout_s = max_bytes, timeout_s

    def allowed(self, host: str, peer: str) -> bool:
        if host.lower() in self.names:
            return True
        address = ipaddress.ip_address(peer.split("%", 1)[0])
        return any(address in n for n in self.networks)

    def fetch(self, url: str, source: str) -> bytes:
        """The bytes at ``url`` (blocking). Refused 422 when the URL is not allowed or not an
        image the gateway takes, 502 when the image server failed (the station may retry)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _refused(422, source, f"{url!r} is not a http(s) URL")
        host = parts.hostname
        if not self.names and not self.networks:
            raise _refused(422, source, f"{url}: fetching images is not enabled "
                           "(gateway.fetch_allow)")  # fmt: skip
        if host.lower() not in self.names:
            # refused before connecting when no address of the name is allowed; the address the
            # connection reaches is checked again below
            try:
                found = {str(a[4][0]) for a in socket.getaddrinfo(host, parts.port or 80)}
            except OSError as exc:
                raise _refused(502, source, f"{url}: cannot resolve {host}: {exc}") from exc
            if not any(self.allowed(host, a) for a in found):
                raise _refused(422, source, f"{url}: {host} is not in gateway.fetch_allow")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(host, parts.port, timeout=self.timeout_s)
        try:
            try:
                conn.connect()
            except (OSError, http.client.HTTPException) as exc:
                raise _refused(502, source, f"{url}: cannot connect: {exc}") from exc
            assert conn.sock is not None
            peer = conn.sock.getpeername()[0]
            if not self.allowed(host, peer):
                raise _refused(422, source, f"{url}: {host} ({peer}) is not in gateway.fetch_allow")
            path = parts.path or "/"
            try:
                conn.request("GET", path + (f"?{parts.query}" if parts.query else ""),
                             headers={"Accept": "image/jpeg"})  # fmt: skip
                res = conn.getresponse()
                if res.status != 200:
                    code = 502 if res.status >= 500 else 422
                    raise _refused(code, source, f"{url}: the image server answered {res.status}")
                declared = res.getheader("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise Refused(413, "too_large", f"{source}: image of {declared} bytes, the "
                                  f"limit is {self.max_bytes}", [(source, "image too large")])  # fmt: skip
                data = res.read(self.max_bytes + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise _refused(502, source, f"{url}: {exc}") from exc
        finally:
            conn.close()
        if len(data) > self.max_bytes:
            raise Refused(413, "too_large", f"{source}: image larger than {self.max_bytes} "
                          "bytes", [(source, "image too large")])  # fmt: skip
        return data


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _refused(status: int, source: str, reason: str) -> Refused:
    code = "bad_gateway" if status == 502 else "invalid"
    return Refused(status, code, f"{source}: {reason}", [(source, reason)],
                   retry_after=5 if status == 502 else None)  # fmt: skip

"""Payments the bank or the 非税收入 platform posts (罚缴分离; issue #25 must-have 8).

``POST /v1/payments`` takes one payment as JSON (``bank_ref``, ``decision_no``, ``amount`` in
yuan, ``paid_on``), the fields of a row of ``offsite payments import``, and matches it the same
way (:func:`cases.payments.import_payments`). The body is signed: the header
``X-Offsite-Signature: sha256=<hex>`` is HMAC-SHA256 of the body with ``console.payment_secret``;
without the setting the callback is off (503), without the right signature it is refused (401).
The bank's reference makes it idempotent. ``GET /payments`` shows officers what matched nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cases.payments import import_payments, payment_of
from sinks.accounts import HEAD, OFFICER, Session

from .pages import Console, render

SIGNATURE_HEADER = "X-Offsite-Signature"
MAX_BODY = 64 * 1024


def signature(secret: str, body: bytes) -> str:
    """The header value that authenticates ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payment_routes(c: Console, page: Any) -> list[Route]:
    async def callback(request: Request) -> Response:
        if not c.payment_secret:
            return JSONResponse({"error": "payment callback not configured"}, 503)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, 413)
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.encode(), signature(c.payment_secret, body).encode()):
            return JSONResponse({"error": f"{SIGNATURE_HEADER} missing or wrong"}, 401)
        try:
            payment = payment_of(json.loads(body))
        except ValueError as exc:  # JSONDecodeError is a ValueError
            return JSONResponse({"error": f"not a payment: {exc}"}, 422)
        report = await import_payments(c.pool, [payment], "http", c.now())
        if report.unmatched:
            return JSONResponse({"status": "unmatched", "error": report.unmatched[0]}, 422)
        status = "imported" if report.imported else "already imported"
        return JSONResponse({"status": status, "bank_ref": payment.bank_ref},
                            201 if report.imported else 200)  # fmt: skip

    async def unmatched(request: Request, session: Session) -> Response:
        rows = await c.pool.fetch("SELECT * FROM unmatched_payments ORDER BY received_at DESC")
        return render("payments.html", session=session, rows=rows, title="未匹配的缴款")

    return [Route("/v1/payments", callback, methods=["POST"]),
            Route("/payments", page({OFFICER, HEAD}, unmatched))]  # fmt: skip

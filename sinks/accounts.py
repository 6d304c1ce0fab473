"""Console accounts, server-side sessions and login throttles.

Passwords are Argon2id hashes (argon2-cffi), hashed and checked in a worker thread: a hash
costs tens of milliseconds of CPU and must not stall the event loop. A session cookie carries a
random token; the database keeps only its SHA-256, with the session's CSRF token.

OffsiteError
└── AccountError    an account cannot be created or changed (bad name, role, weak password)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from events import DatabaseError, OffsiteError

OFFICER, LEGAL_REVIEWER, COMMAND_CENTER, ADMIN = (
    "officer", "legal_reviewer", "command_center", "admin",
)  # fmt: skip
PARTY = "party"  # the party's own page: no account, one case
FIELD_OFFICER, SQUAD_LEADER = "field_officer", "squad_leader"  # dispatch (sinks/dispatch.py)
ROLES = {OFFICER: "执法人员", LEGAL_REVIEWER: "法制审核人员", COMMAND_CENTER: "指挥中心",
         ADMIN: "管理员", FIELD_OFFICER: "外勤执法队员", SQUAD_LEADER: "中队长"}  # fmt: skip
# issue #25: the agency's 负责人 decides (行政处罚法 Art. 57)
HEAD = "head"
ROLES[HEAD] = "负责人"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10


class AccountError(OffsiteError):
    """An account cannot be created or changed; the message says why (for the admin)."""


@dataclass(frozen=True)
class Account:
    account_id: int
    username: str
    display_name: str
    roles: frozenset[str]
    active: bool = True
    badge_no: str | None = None  # 执法证号 (Art. 42): an officer named on a notice needs one
    # 法律职业资格证书编号 (Art. 58 para 2): a legal reviewer's 法制审核 needs one
    legal_cert_no: str | None = None


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, the library's current recommended parameters


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to check unknown names against, so that they cost as much as known ones."""
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Blocking (Argon2): call it in a thread from async code."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password too short: at least {MIN_PASSWORD} characters")
    return _hasher().hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: an unknown account, checked against a
    dummy hash all the same). Blocking."""
    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _roles(roles: Iterable[str]) -> list[str]:
    out = sorted(set(roles))
    unknown = [r for r in out if r not in ROLES]
    if not out or unknown:
        raise AccountError(
            f"roles must be among {', '.join(ROLES)}; got {', '.join(out) or 'none'}"
        )
    return out


def _account(r: Any) -> Account:
    return Account(r["account_id"], r["username"], r["display_name"], frozenset(r["roles"]),
                   r["active"], r.get("badge_no"), r.get("legal_cert_no"))  # fmt: skip


class Accounts:
    """The ``accounts`` table. asyncpg errors become DatabaseError here."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(
        self, username: str, roles: Collection[str], password: str, display_name: str = ""
    ) -> Account:
        if not USERNAME.match(username):
            raise AccountError(
                f"bad user name {username!r}: 2–32 of a-z 0-9 . _ -, starting with a letter or digit"
            )
        wanted = _roles(roles)
        hashed = await asyncio.to_thread(hash_password, password)
        try:
            row = await self.pool.fetchrow(
                "INSERT INTO accounts (username, display_name, roles, password_hash)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING RETURNING *",
                username, display_name or username, wanted, hashed,
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"creating account {username} failed: {exc}") from exc
        if row is None:
            raise AccountError(f"account {username} exists")
        return _account(row)

    async def set_password(self, username: str, password: str) -> None:
        hashed = await asyncio.to_thread(hash_password, password)
        done = await self._execute(
            "UPDATE accounts SET password_hash = $2 WHERE username = $1", username, hashed
        )
        if done == "UPDATE 0":
            raise AccountError(f"no account {username}")
        await self._execute(  # a new password ends every session of the old one
            "DELETE FROM sessions s USING accounts a"
            " WHERE s.account_id = a.account_id AND a.username = $1",
            username,
        )

    async def set_badge(self, username: str, badge_no: str | None) -> None:
        """The account's 执法证号 (None or blank: none)."""
        await self._set_number(username, "badge_no", badge_no, "执法证号")

    async def set_legal_cert(self, username: str, cert_no: str | None) -> None:
        """The account's 法律职业资格证书编号 (None or blank: none)."""
        await self._set_number(username, "legal_cert_no", cert_no, "法律职业资格证书编号")

    async def _set_number(self, username: str, column: str, value: str | None, what: str) -> None:
        number = (value or "").strip() or None
        if number is not None and (len(number) > 40 or any(ch.isspace() for ch in number)):
            raise AccountError(f"{what}至多40个字符，不含空格")
        done = await self._execute(
            f"UPDATE accounts SET {column} = $2 WHERE username = $1", username, number
        )
        if done == "UPDATE 0":
            raise AccountError(f"no account {username}")

    async def set_active(self, username: str, active: bool) -> None:
        done = await self._execute(
            "UPDATE accounts SET active = $2 WHERE username = $1", username, active
        )
        if done == "UPDATE 0":
            raise AccountError(f"no account {username}")
        if not active:
            await self._execute(
                "DELETE FROM sessions s USING accounts a"
                " WHERE s.account_id = a.account_id AND a.username = $1",
                username,
            )

    async def authenticate(self, username: str, password: str) -> Account | None:
        """The active account whose password this is, or None; unknown names cost the same."""
        try:
            row = await self.pool.fetchrow(
                "SELECT * FROM accounts WHERE username = $1 AND active", username
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading accounts failed: {exc}") from exc
        stored = row["password_hash"] if row else None
        ok = await asyncio.to_thread(check_password, stored, password)
        return _account(row) if ok and row else None

    async def get(self, username: str) -> Account | None:
        try:
            row = await self.pool.fetchrow("SELECT * FROM accounts WHERE username = $1", username)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading accounts failed: {exc}") from exc
        return _account(row) if row else None

    async def all(self) -> list[Account]:
        try:
            rows = await self.pool.fetch("SELECT * FROM accounts ORDER BY username")
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading accounts failed: {exc}") from exc
        return [_account(r) for r in rows]

    async def _execute(self, sql: str, *args: Any) -> str:
        try:
            return str(await self.pool.execute(sql, *args))
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"changing accounts failed: {exc}") from exc


@dataclass(frozen=True)
class Session:
    """A signed-in officer's session, or a party's (``account`` None, ``party_case_id`` set)."""

    token_hash: bytes
    csrf_token: str
    expires_at: dt.datetime
    account: Account | None = None
    party_case_id: str | None = None

    @property
    def roles(self) -> frozenset[str]:
        if self.account is not None:
            return self.account.roles
        return frozenset({PARTY})

    @property
    def actor(self) -> str:
        return self.account.username if self.account else PARTY


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def same_token(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; a missing one never matches."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


class Sessions:
    """Server-side sessions: idle and absolute time-outs, the CSRF token, and ending them."""

    # a session is touched at most once a minute: not one write per page
    TOUCH_EVERY = dt.timedelta(minutes=1)

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        idle: dt.timedelta = dt.timedelta(hours=2),
        absolute: dt.timedelta = dt.timedelta(hours=12),
        party: dt.timedelta = dt.timedelta(minutes=30),
    ) -> None:
        self.pool, self.idle, self.absolute, self.party = pool, idle, absolute, party

    async def start(
        self,
        now: dt.datetime,
        *,
        account: Account | None = None,
        party_case_id: str | None = None,
        address: str | None = None,
    ) -> tuple[str, Session]:
        """A new session; returns (the cookie's token, the session). The token is shown once."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        life = self.party if account is None else self.absolute
        try:
            await self.pool.execute(
                "INSERT INTO sessions (token_hash, account_id, party_case_id, csrf_token,"
                " address, created_at, last_seen, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
                token_hash(token), account.account_id if account else None, party_case_id,
                csrf, address, now, now + life,
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"starting a session failed: {exc}") from exc
        return token, Session(token_hash(token), csrf, now + life, account, party_case_id)

    async def get(self, token: str | None, now: dt.datetime) -> Session | None:
        """The live session of ``token``, or None (unknown, ended, idle too long, expired, or
        its account deactivated)."""
        if not token or len(token) > 100:
            return None
        digest = token_hash(token)
        try:
            r = await self.pool.fetchrow(
                "SELECT s.*, a.username, a.display_name, a.roles, a.active"
                " FROM sessions s LEFT JOIN accounts a USING (account_id)"
                " WHERE s.token_hash = $1 AND s.expires_at > $2",
                digest, now,
            )  # fmt: skip
            if r is None or (r["account_id"] is not None and not r["active"]):
                return None
            if r["account_id"] is not None and now - r["last_seen"] > self.idle:
                await self.pool.execute("DELETE FROM sessions WHERE token_hash = $1", digest)
                return None
            if now - r["last_seen"] > self.TOUCH_EVERY:
                await self.pool.execute(
                    "UPDATE sessions SET last_seen = $2 WHERE token_hash = $1", digest, now
                )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading a session failed: {exc}") from exc
        account = _account(r) if r["account_id"] is not None else None
        return Session(digest, r["csrf_token"], r["expires_at"], account, r["party_case_id"])

    async def end(self, session: Session) -> None:
        try:
            await self.pool.execute("DELETE FROM sessions WHERE token_hash = $1",
                                    session.token_hash)  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"ending a session failed: {exc}") from exc

    async def purge(self, now: dt.datetime) -> int:
        """Drop expired sessions; returns how many."""
        try:
            done = await self.pool.execute("DELETE FROM sessions WHERE expires_at <= $1", now)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"purging sessions failed: {exc}") from exc
        return int(str(done).split()[-1])


class Throttle:
    """At most ``limit`` failures per key within ``window_s``; a key at the limit is refused
    until its oldest failure leaves the window. Keys are e.g. ``account:wang@10.0.0.7`` and
    ``addr:10.0.0.7``: one account guessed from an address, and many accounts from one
    address, are both held back, and no address can lock an account out of the others (the
    console's log-in); the party page also counts views and statements with it. In this
    process's memory, bounded to ``max_keys`` (the oldest
    keys go first), so a flood of new keys cannot grow it without end."""

    def __init__(
        self,
        limit: int = 5,
        window_s: float = 900,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit, self.window_s, self.clock, self.max_keys = limit, window_s, clock, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def blocked(self, *keys: str) -> bool:
        now = self.clock()
        return any(len(self._recent(k, now)) >= self.limit for k in keys)

    def retry_after(self, *keys: str) -> float:
        """Seconds until every key in ``keys`` may try again."""
        now = self.clock()
        waits = [q[0] + self.window_s - now for k in keys
                 if len(q := self._recent(k, now)) >= self.limit]  # fmt: skip
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for k in keys:
            q = self._failures.setdefault(k, deque())
            q.append(now)
            while len(q) > self.limit:
                q.popleft()
            self._failures.move_to_end(k)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def reset(self, *keys: str) -> None:
        for k in keys:
            self._failures.pop(k, None)

"""Issue #12 item 2 and 9: the case lifecycle over the real case store and real evidence
packages. Every transition is a row with who, when and why, and a signed custody entry in the
case's package whose head the store keeps; a refused action writes nothing anywhere."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cases import WorkCalendar, deadline
from cases.payments import Payment, import_payments
from cases.procedure import procedure_lifecycle
from events import Violation
from evidence import Signer, build_package, verify_package
from evidence.custody import CUSTODY_LOG, read_log
from offsite import services
from offsite.config import Settings, load_owners
from offsite.console import PackageCustody, redecider
from offsite.pipeline import prepare
from sinks import BlobStore, CaseStore, case_id
from sinks.accounts import HEAD, LEGAL_REVIEWER, OFFICER, PARTY, Accounts
from sinks.lifecycle import (
    Actor,
    CustodyError,
    Lifecycle,
    Policy,
    Request,
    RoleRefused,
    TransitionRefused,
    custody_heads,
)
from tests.unit.test_no_wrong_fine import AT, NOW, decide, one, passing
from tests.unit.test_stages import REGISTRY

AGENCY = "湖南省交通运输综合行政执法局"
WANG = Actor("wang", frozenset({OFFICER}))
LI = Actor("li", frozenset({OFFICER}))
ZHAO = Actor("zhao", frozenset({LEGAL_REVIEWER}))
BOTH = Actor("chen", frozenset({OFFICER, LEGAL_REVIEWER}))  # a small agency's officer
PARTY_ACTOR = Actor(PARTY, frozenset({PARTY}))
CHEN = Actor("chen", frozenset({HEAD}))  # the 负责人: decides (Art. 57)
# the two officers a notice names (Art. 42), with their 执法证号: every world has their accounts
TEAM = {"team.liu": ("刘警官", "43010000001"), "team.ma": ("马警官", "43010000002")}
# the world's legal reviewer holds 法律职业资格 (Art. 58 para 2), and writes an opinion (B5)
LEGAL_CERTS = {"zhao": "A20194301000001"}
OPINION = "事实清楚，证据确凿，适用依据正确，程序合法，裁量适当"
LEGAL_ACTIONS = ("approve", "review_after_hearing")
BEIJING = dt.timezone(dt.timedelta(hours=8))


class Clock:
    """The lifecycle's clock, moved by the test (no sleeping)."""

    def __init__(self) -> None:
        # the violations are decided at NOW and their packages made then: a minute after
        self.now = NOW + dt.timedelta(minutes=1)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class World:
    settings: Settings
    store: CaseStore
    lifecycle: Lifecycle
    clock: Clock
    cases: dict[str, str]  # name → case_id
    violations: dict[str, Violation]

    def package(self, name: str) -> Path:
        return self.settings.evidence.dir / self.cases[name]

    async def status(self, name: str) -> str:
        return str(await self.store.pool.fetchval(
            "SELECT status FROM cases WHERE case_id = $1", self.cases[name]))  # fmt: skip

    async def transitions(self, name: str) -> list[tuple[str, str, str, str]]:
        rows = await self.store.pool.fetch(
            "SELECT action, from_status, to_status, actor FROM case_transitions"
            " WHERE case_id = $1 ORDER BY transition_id", self.cases[name])  # fmt: skip
        return [tuple(r) for r in rows]  # type: ignore[misc]

    async def act(self, name: str, action: str, actor: Actor, **kw: object) -> list[str]:
        if action == "issue_notice":  # the world's two officers unless the test names others
            payload = dict(kw.get("payload") or {})  # type: ignore[call-overload]
            kw["payload"] = {"officers": sorted(TEAM), **payload}
        if action in LEGAL_ACTIONS and actor.name in LEGAL_CERTS:  # unless the test says
            kw.setdefault("reason", OPINION)
            await qualify(self.store.pool, actor.name)
        done = await self.lifecycle.apply(self.cases[name], Request(action, actor, **kw))  # type: ignore[arg-type]
        return [a.to_status for a in done]


async def qualify(pool: Any, username: str) -> None:
    """The account of ``username`` (made here if a test has not) with its 法律职业资格证书编号."""
    await pool.execute(
        "INSERT INTO accounts (username, display_name, roles, password_hash, legal_cert_no)"
        " VALUES ($1, $1, ARRAY['legal_reviewer'], '!', $2) ON CONFLICT (username)"
        " DO UPDATE SET legal_cert_no = EXCLUDED.legal_cert_no", username, LEGAL_CERTS[username])  # fmt: skip


OWNERS = load_owners(Path("configs/owners.yaml"))  # the party of 湘A12345, 湘C34567, 湘B23456
PASSES = {  # name → (gross kg, plate): fine 2,500 (not major), fine 24,500 (major), no plate
    "small": (56_000, "湘A12345"),
    "major": (100_000, "湘C34567"),
    "unread": (56_000, None),
    "other": (70_000, "湘B23456"),
}


async def make_world(settings: Settings, policy: Policy | None = None) -> World:
    """Cases in a fresh store, each with its signed evidence package, as the pipeline makes them."""
    store = await prepare(settings, services.endpoints(settings))
    signer = Signer.load(settings.evidence.key)
    violations = {}
    for name, (gross, plate) in PASSES.items():
        violations[name] = one(await decide(passing(f"r-{name}", gross, plate=plate)))
    await (await store.begin_batch(list(violations.values()))).commit()
    blobs = BlobStore(settings.var_dir / "blobs")
    for v in violations.values():
        build_package(v, REGISTRY, blobs, settings.evidence.dir, signer, AGENCY, created_at=NOW)
    clock = Clock()
    policy = replace(policy or Policy(), deadline=partial(deadline, WorkCalendar()))
    lifecycle = procedure_lifecycle(store.pool, PackageCustody(settings.evidence.dir, signer),
                                    policy, OWNERS, redecide=redecider(settings, store, clock),
                                    clock=clock)  # fmt: skip
    accounts = Accounts(store.pool)
    for username, (display, badge) in TEAM.items():
        await accounts.create(username, [OFFICER], "team-password-1", display_name=display)
        await accounts.set_badge(username, badge)
    cases = {name: case_id(v) for name, v in violations.items()}
    return World(settings, store, lifecycle, clock, cases, violations)


@pytest.fixture
async def world(plain_settings: Settings) -> World:
    w = await make_world(plain_settings)
    yield w  # type: ignore[misc]
    await w.store.close()


async def test_a_case_goes_from_review_to_closed_and_every_step_is_recorded(world: World) -> None:
    w = world
    assert await w.act("small", "confirm", WANG, reason="图像清晰") == ["confirmed"]
    w.clock.now += dt.timedelta(hours=1)
    doc = {"plate": "湘A12345", "fine_cny": 2_500}
    assert await w.act("small", "issue_notice", WANG, payload={"document": doc}) == [
        "notice_issued"
    ]
    issued_at, today = w.clock.now, w.clock.now.astimezone(BEIJING).date()
    # no decision on a notice that has not been served (review B3)
    with pytest.raises(TransitionRefused, match="尚未送达"):
        await w.act("small", "decide", CHEN, reason="事实清楚")
    served = {"method": "direct", "served_on": today.isoformat(), "served_by": "王警官、李警官",
              "recipient": "湖南示例物流有限公司（张某签收）"}  # fmt: skip
    assert await w.act("small", "serve_notice", WANG, payload=served) == ["notice_issued"]
    notice = await w.store.pool.fetchrow(
        "SELECT * FROM violation_notices WHERE case_id = $1", w.cases["small"]
    )
    # 15 days from the service, moved off a rest day (民法典 Art. 203; tests/unit/test_calendar.py)
    assert notice["served_on"] == today
    assert notice["statement_due"] == deadline(WorkCalendar(), today, 15).due
    assert notice["statement_due"] >= today + dt.timedelta(days=15)
    assert len(notice["lookup_code"]) == 10
    assert notice["notice_no"].startswith(f"超限〔{today.year}〕")
    assert json.loads(notice["document"])["party"]["name"] == "湖南示例物流有限公司"
    # the officer cannot decide while the party may still state their case
    with pytest.raises(TransitionRefused, match="期限"):
        await w.act("small", "decide", CHEN, reason="事实清楚")
    await w.act("small", "submit_statement", PARTY_ACTOR, payload={"body": "当日载有合法货物"})
    assert await w.status("small") == "statement_received"
    # a statement does not end the period: the party may add to it until the last day
    with pytest.raises(TransitionRefused, match="期限"):
        await w.act("small", "decide", CHEN, reason="陈述理由不成立")
    w.clock.now = dt.datetime.combine(notice["statement_due"] + dt.timedelta(days=1),
                                      dt.time(9), BEIJING)  # fmt: skip
    # review B7 (Art. 45): no decision before the statement has its 复核意见
    with pytest.raises(TransitionRefused, match="未作复核意见"):
        await w.act("small", "decide", CHEN, reason="陈述理由不成立")
    sid = await w.store.pool.fetchval(
        "SELECT statement_id FROM statements WHERE case_id = $1", w.cases["small"])  # fmt: skip
    await w.act("small", "reply_statement", WANG, payload={
        "statement_id": str(sid), "adopted": "not_adopted",
        "opinion": "称重记录与检定证书在案，所称合法货物不影响超限事实"})  # fmt: skip
    await w.act("small", "decide", CHEN, reason="陈述理由不成立")
    # review B10: a decision is written, and the case closes only once the fine is paid
    with pytest.raises(TransitionRefused, match=r"尚欠 2500\.00 元"):
        await w.act("small", "close", WANG)
    today = w.clock.now.astimezone(BEIJING).date()
    await w.act("small", "serve_decision", WANG, payload={**served, "served_on": today.isoformat()})
    number = await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", w.cases["small"])  # fmt: skip
    paid = Payment("B-0001", number, 2_500_00, today)
    assert (await import_payments(w.store.pool, [paid], "bank.csv", w.clock.now)).imported == 1
    await w.act("small", "close", WANG)
    assert await w.transitions("small") == [
        ("confirm", "pending_review", "confirmed", "wang"),
        ("issue_notice", "confirmed", "notice_issued", "wang"),
        ("serve_notice", "notice_issued", "notice_issued", "wang"),
        ("submit_statement", "notice_issued", "statement_received", "party"),
        ("reply_statement", "statement_received", "statement_received", "wang"),
        ("decide", "statement_received", "decided", "chen"),
        ("serve_decision", "decided", "decided", "wang"),
        ("close", "decided", "closed", "wang"),
    ]
    rows = await w.store.pool.fetch(
        "SELECT reason, at, custody_seq, custody_hash FROM case_transitions WHERE case_id = $1"
        " ORDER BY transition_id", w.cases["small"])  # fmt: skip
    assert rows[0]["reason"] == "图像清晰" and rows[1]["at"] == issued_at
    # each transition is the custody entry it names, signed, after the package's creation
    log = read_log(w.package("small"))
    assert [e["event"] for e in log] == ["created"] + ["transition"] * 8
    for r in rows:
        entry = log[r["custody_seq"] - 1]
        assert entry["hash"] == r["custody_hash"] and entry["actor"] in ("wang", "party", "chen")
    confirmed = json.loads(log[1]["detail"])
    assert confirmed["party"] == {"kind": "organization", "name": "湖南示例物流有限公司"}
    assert {k: confirmed[k] for k in ("action", "from", "to", "reason")} == {
        "action": "confirm",
        "from": "pending_review",
        "to": "confirmed",
        "reason": "图像清晰",
    }
    assert "lookup_code" not in log[2]["detail"] and notice["lookup_code"] not in log[2]["detail"]
    heads = await custody_heads(w.store.pool, [w.cases["small"]])
    head = heads[w.cases["small"]]
    assert head == (9, log[-1]["hash"])
    assert verify_package(w.package("small"), custody_head=head) == []


async def test_invalid_transitions_are_refused_and_write_nothing(world: World) -> None:
    w = world
    log_before = (w.package("small") / CUSTODY_LOG).read_bytes()
    refused = [
        ("approve", WANG, {}, RoleRefused),  # an officer does not do legal review
        ("approve", ZHAO, {}, TransitionRefused),  # not in legal review
        ("close", WANG, {}, TransitionRefused),
        ("issue_notice", WANG, {}, TransitionRefused),  # not confirmed yet
        ("reject", WANG, {}, TransitionRefused),  # a reason from the list is required
        ("reject", WANG, {"reason_code": "other"}, TransitionRefused),  # "other" needs text
        ("reject", WANG, {"reason_code": "made_up"}, TransitionRefused),
        ("transfer", WANG, {}, TransitionRefused),  # 移送公安 needs a reason
        ("submit_statement", WANG, {}, RoleRefused),
        ("fly", WANG, {}, TransitionRefused),
    ]
    for action, actor, kw, error in refused:
        with pytest.raises(error):
            await w.act("small", action, actor, **kw)
    # no proposal (the plate was not read): confirming is refused, the officer says why
    with pytest.raises(TransitionRefused, match="未提出处理意见"):
        await w.act("unread", "confirm", WANG)
    assert await w.transitions("small") == [] and await w.status("small") == "pending_review"
    assert (w.package("small") / CUSTODY_LOG).read_bytes() == log_before
    # a final state takes nothing more
    await w.act("small", "reject", WANG, reason_code="duplicate")
    with pytest.raises(TransitionRefused, match="已驳回"):
        await w.act("small", "confirm", WANG)
    await w.act("unread", "transfer", WANG, reason="疑似套牌、无牌车辆，移送公安机关交通管理部门")
    assert await w.status("unread") == "transferred"


async def test_a_major_decision_goes_to_legal_review_and_the_confirmer_cannot_approve_it(
    world: World,
) -> None:
    w = world
    # confirmed by someone who also does legal review: it goes on to legal review by itself
    assert await w.act("major", "confirm", BOTH) == ["confirmed", "legal_review"]
    with pytest.raises(TransitionRefused, match="审核分离"):
        await w.act("major", "approve", BOTH, reason="事实清楚")
    with pytest.raises(TransitionRefused, match="须填写理由"):
        await w.act("major", "send_back", ZHAO)
    await w.act("major", "send_back", ZHAO, reason="超限数额请复核轴重")
    await w.act("major", "resubmit", WANG, reason="已复核")
    # wang resubmitted it: the same rule holds for him, zhao may approve
    assert await w.act("major", "approve", ZHAO) == ["approved"]
    assert await w.status("major") == "approved"
    # a major case cannot skip legal review to the notice
    await w.act("other", "confirm", WANG)
    assert await w.status("other") == "confirmed"  # 9,500 CNY is not major by default


async def test_the_agency_catalogue_makes_a_decision_major(plain_settings: Settings) -> None:
    w = await make_world(plain_settings, Policy(major_fine_cny_at_least=5_000))
    try:
        assert await w.act("other", "confirm", WANG) == ["confirmed", "legal_review"]
        assert await w.act("small", "confirm", WANG) == ["confirmed"]
        with pytest.raises(TransitionRefused, match="法制审核"):
            await w.act("other", "issue_notice", WANG, payload={"document": {}})
    finally:
        await w.store.close()


async def test_correcting_the_plate_decides_again_and_is_audited(world: World) -> None:
    w = world
    with pytest.raises(TransitionRefused, match="不是有效"):
        await w.act("unread", "correct_plate", WANG, reason="人工识读",
                    payload={"plate": "NOPE", "plate_color": "yellow"})  # fmt: skip
    await w.act("unread", "correct_plate", WANG, reason="人工识读图像",
                payload={"plate": "湘D45678", "plate_color": "yellow"})  # fmt: skip
    row = await w.store.pool.fetchrow(
        "SELECT plate, outcome, fine_cny, status FROM cases WHERE case_id = $1", w.cases["unread"]
    )
    assert tuple(row) == ("湘D45678", "fine", 2_500, "pending_review")
    fix = await w.store.pool.fetchrow("SELECT * FROM case_corrections")
    assert (fix["old_value"], fix["new_value"], fix["actor"]) == (None, "湘D45678", "wang")
    assert json.loads(fix["old_violation"])["outcome"] == "review"
    # now it has a proposal and can be confirmed; the corrector cannot do its legal review
    await w.act("unread", "confirm", LI)
    assert await w.status("unread") == "confirmed"


async def test_two_officers_confirming_at_once_make_one_transition(world: World) -> None:
    w = world
    results = await asyncio.gather(w.act("small", "confirm", WANG), w.act("small", "confirm", LI),
                                   return_exceptions=True)  # fmt: skip
    assert sorted(type(r).__name__ for r in results) == ["TransitionRefused", "list"]
    assert len(await w.transitions("small")) == 1
    assert len(read_log(w.package("small"))) == 2


async def test_a_cut_short_custody_log_stops_the_case_and_is_reported(world: World) -> None:
    w = world
    await w.act("small", "confirm", WANG)
    await w.lifecycle.record(w.cases["small"], "viewed", "li")
    path = w.package("small") / CUSTODY_LOG
    full = path.read_bytes()
    path.write_bytes(b"".join(full.splitlines(keepends=True)[:2]))  # the last entry removed
    head = (await custody_heads(w.store.pool, [w.cases["small"]]))[w.cases["small"]]
    problems = verify_package(w.package("small"), custody_head=head)
    assert problems and "truncated" in problems[0]
    assert verify_package(w.package("small")) == []  # on its own, a prefix is a chain
    with pytest.raises(CustodyError, match="ends at entry 2"):
        await w.act("small", "issue_notice", WANG,
                    payload={"document": {"plate": "湘A12345", "fine_cny": 2_500}})  # fmt: skip
    assert await w.status("small") == "confirmed"  # the store rolled back with the refusal
    assert not await w.store.pool.fetchval("SELECT count(*) FROM violation_notices")


async def test_a_case_without_its_package_cannot_be_acted_on(world: World) -> None:
    w = world
    package = w.package("other")
    package.rename(package.with_name(package.name + ".moved"))
    with pytest.raises(CustodyError, match="证据包尚未生成"):
        await w.act("other", "confirm", WANG)
    assert await w.status("other") == "pending_review" and await w.transitions("other") == []


async def test_a_corrected_plate_joins_its_trip_and_can_be_corrected_again(
    plain_settings: Settings,
) -> None:
    """Review A1 (行政处罚法 Art. 29: one act, one fine). 湘A12345 (yellow) is fined at 08:00
    (56,000 − ⌈1,120⌉ − 49,000 = 5,880 kg → 2,500); 3 h later the camera reads it with
    confidence 0.5: review. The officer reads the plate: the pass is the same trip (within
    national.yaml's 24 h), attached to the first case, no second fine. A typo fixed twice on
    the same case works, and each time the trip store follows the plate."""
    settings = plain_settings
    store = await prepare(settings, services.endpoints(settings))
    try:
        first = one(await decide(passing("t1", 56_000), trips=store, history=store))
        later = passing("t2", 60_000, ts=AT + dt.timedelta(hours=3), cap={"confidence": 0.5})
        second = one(await decide(later, trips=store, history=store))
        assert (first.outcome, first.fine_cny, second.outcome) == ("fine", 2_500, "review")
        await (await store.begin_batch([first, second])).commit()
        signer = Signer.load(settings.evidence.key)
        blobs = BlobStore(settings.var_dir / "blobs")
        for v in (first, second):
            build_package(v, REGISTRY, blobs, settings.evidence.dir, signer, AGENCY, created_at=NOW)
        clock = Clock()
        lifecycle = Lifecycle(store.pool, PackageCustody(settings.evidence.dir, signer),
                              redecide=redecider(settings, store, clock), clock=clock)  # fmt: skip

        async def correct(plate: str) -> tuple[str, int | None, str | None]:
            await lifecycle.apply(case_id(second), Request(
                "correct_plate", WANG, reason="人工识读图像",
                payload={"plate": plate, "plate_color": "yellow"}))  # fmt: skip
            row = await store.pool.fetchrow("SELECT outcome, fine_cny, violation FROM cases"
                                            " WHERE case_id = $1", case_id(second))  # fmt: skip
            return row["outcome"], row["fine_cny"], json.loads(row["violation"])["attached_to"]

        assert await correct("湘A12345") == ("no_penalty", None, case_id(first))
        # another vehicle: its own trip; 60,000 − 1,200 − 49,000 = 9,800 kg → 9 × 500
        assert await correct("湘A12346") == ("fine", 4_500, None)
        assert await correct("湘A12345") == ("no_penalty", None, case_id(first))
    finally:
        await store.close()

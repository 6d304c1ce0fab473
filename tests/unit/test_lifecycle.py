"""Issue #12: the lifecycle's table and guards (no database), and the two custody holes closed
in evidence/: a package signed by a key the agency did not publish fails against its keyring,
and a custody log cut short, rolled back or grown behind the store's back is reported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from evidence import Keyring, Signer, build_package, generate_key, load_keyring, verify_package
from evidence.custody import CUSTODY_LOG, head_problems, read_log
from sinks import BlobStore
from sinks.accounts import HEAD, LEGAL_REVIEWER, OFFICER
from sinks.lifecycle import (
    FINAL_STATES,
    STATES,
    TRANSITIONS,
    Actor,
    CaseFacts,
    Context,
    Lifecycle,
    Past,
    Policy,
    Request,
    RoleRefused,
    Transition,
    TransitionRefused,
)

from .test_no_wrong_fine import decide, one, passing
from .test_stages import REGISTRY

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
WANG = Actor("wang", frozenset({OFFICER}))
ZHAO = Actor("zhao", frozenset({LEGAL_REVIEWER}))
CHEN = Actor("chen", frozenset({HEAD}))  # the 负责人


def facts(status: str = "pending_review", **kw: object) -> CaseFacts:
    base: dict[str, object] = dict(case_id="c1", status=status, plate="湘A12345", outcome="fine",
                                   fine_cny=2_500, violation_code="road.overload.gross",
                                   legal_review=False)  # fmt: skip
    base.update(kw)
    return CaseFacts(**base)  # type: ignore[arg-type]


def plan(case: CaseFacts, action: str, actor: Actor = WANG, history: tuple[Past, ...] = (),
         policy: Policy | None = None, **kw: object) -> Transition:  # fmt: skip
    machine = Lifecycle(None, None, policy, clock=lambda: NOW)  # type: ignore[arg-type]
    ctx = Context(case, actor, history, NOW, machine.policy)
    return machine.plan(ctx, Request(action, actor, **kw))  # type: ignore[arg-type]


def test_every_state_is_reachable_and_only_final_states_have_no_way_out() -> None:
    reached, todo = {"pending_review"}, ["pending_review"]
    while todo:
        here = todo.pop()
        for t in TRANSITIONS:
            # (a transition without a target records something and stays: service, a review)
            if here in t.sources and t.target is not None and t.target not in reached:
                reached.add(t.target)
                todo.append(t.target)
    assert reached == set(STATES)
    sources = {s for t in TRANSITIONS for s in t.sources}
    assert set(STATES) - sources == FINAL_STATES - {"closed"}
    # a closed case's one way out: its decision revoked (复议, 诉讼, an error found; issue #26)
    assert {t.action for t in TRANSITIONS if "closed" in t.sources} == {"revoke_decision"}


@pytest.mark.parametrize("status", ["decided", "closed"])
def test_the_head_revokes_a_decision_with_a_coded_reason(status: str) -> None:
    """撤销行政处罚决定 (issue #26 must-have 4): the 负责人's, with its reason, from a decided or
    closed case; it ends the case as ``revoked``, no prior offence."""
    t = plan(facts(status), "revoke_decision", CHEN, reason_code="reconsideration")
    assert t.target == "revoked" and "revoked" in FINAL_STATES
    with pytest.raises(TransitionRefused, match="须选择理由"):
        plan(facts(status), "revoke_decision", CHEN)
    with pytest.raises(TransitionRefused, match="须说明理由"):
        plan(facts(status), "revoke_decision", CHEN, reason_code="other")
    with pytest.raises(RoleRefused):
        plan(facts(status), "revoke_decision", WANG, reason_code="reconsideration")
    with pytest.raises(TransitionRefused, match="不能执行"):  # no decision yet
        plan(facts("notice_issued"), "revoke_decision", CHEN, reason_code="error_found")


def test_a_table_naming_an_unknown_state_is_refused_at_start() -> None:
    bad = Transition("pay", "缴纳罚款", frozenset({"decided"}), "paid", frozenset({OFFICER}))
    with pytest.raises(ValueError, match="paid"):
        Lifecycle(None, None, transitions=(*TRANSITIONS, bad), clock=lambda: NOW)  # type: ignore[arg-type]


def test_the_plan_follows_the_state_the_role_and_the_reason() -> None:
    assert plan(facts(), "confirm").target == "confirmed"
    assert plan(facts(), "reject", reason_code="plate_misread").target == "rejected"
    with pytest.raises(RoleRefused):
        plan(facts("legal_review"), "approve")
    with pytest.raises(TransitionRefused, match="当前状态"):
        plan(facts(), "approve", ZHAO)
    with pytest.raises(TransitionRefused, match="须选择理由"):
        plan(facts(), "reject")
    # not major: straight to the notice; major: not before legal review
    assert plan(facts("confirmed"), "issue_notice").target == "notice_issued"
    with pytest.raises(TransitionRefused, match="法制审核"):
        plan(facts("confirmed", legal_review=True), "issue_notice")
    with pytest.raises(TransitionRefused, match="非重大"):
        plan(facts("confirmed"), "submit_legal_review")
    major = Policy(major_violation_codes=frozenset({"road.overload.gross"}))
    assert plan(facts("confirmed"), "submit_legal_review", policy=major).target == "legal_review"


def test_separation_of_duties_and_the_party_s_time_to_answer() -> None:
    confirmed_by_zhao = (Past("confirm", "zhao"), Past("submit_legal_review", "zhao"))
    with pytest.raises(TransitionRefused, match="审核分离"):
        plan(facts("legal_review"), "approve", ZHAO, confirmed_by_zhao, reason="事实清楚")
    assert plan(facts("legal_review"), "approve", ZHAO, (Past("confirm", "wang"),),
                reason="事实清楚").target == "approved"  # fmt: skip
    due = NOW.astimezone(Policy().tz).date()
    served = due - dt.timedelta(days=20)
    with pytest.raises(TransitionRefused, match="未届满"):
        plan(facts("notice_issued", statement_due=due, notice_served=served), "decide", CHEN,
             reason="事实清楚")  # fmt: skip
    late = facts("notice_issued", statement_due=due - dt.timedelta(days=1), notice_served=served)
    assert plan(late, "decide", CHEN, reason="事实清楚").target == "decided"
    # review B3: a notice not served opens no period, and allows no decision
    with pytest.raises(TransitionRefused, match="尚未送达"):
        plan(facts("notice_issued"), "decide", CHEN, reason="事实清楚")
    # review B1: a statement received does not end the time to ask for a hearing
    hearing = facts("statement_received", statement_due=due - dt.timedelta(days=1),
                    hearing_due=due, notice_served=served)  # fmt: skip
    with pytest.raises(TransitionRefused, match="申请听证期限"):
        plan(hearing, "decide", CHEN, reason="事实清楚")


@pytest.fixture
async def packages(tmp_path: Path) -> tuple[Path, Path, Signer]:
    """One case packaged twice: signed by the agency's key, and re-signed by another."""
    v = one(await decide(passing("r1", 56_000)))
    blobs = BlobStore(tmp_path / "blobs")
    signers = []
    for name in ("agency", "other"):
        generate_key(tmp_path / f"{name}.pem")
        signers.append(Signer.load(tmp_path / f"{name}.pem"))
    made = [build_package(v, REGISTRY, blobs, tmp_path / name, s, "某执法局")
            for name, s in zip(("agency", "other"), signers, strict=True)]  # fmt: skip
    return made[0], made[1], signers[0]


def test_a_package_re_signed_by_another_key_fails_against_the_keyring(
    packages: tuple[Path, Path, Signer], tmp_path: Path
) -> None:
    ours, resigned, signer = packages
    path = tmp_path / "configs" / "keyring.yaml"
    assert load_keyring(path).keys == {}
    assert Keyring({}).add(path, signer.public_key, "2026-12-01") is True
    keyring = Keyring.load(path)
    assert keyring.add(path, signer.public_key, "2026-12-01") is False  # there already
    assert list(Keyring.load(path).keys) == [signer.key_id]
    assert verify_package(ours, keyring=keyring) == []
    assert verify_package(resigned) == []  # self-consistent: says nothing of who made it
    other_id = Signer.load(tmp_path / "other.pem").key_id
    assert verify_package(resigned, keyring=keyring) == [
        f"signed by key {other_id}, which is not in the agency's keyring"
    ]
    text = path.read_text().replace(signer.key_id, other_id)
    path.write_text(text)
    with pytest.raises(Exception, match="states key id"):
        Keyring.load(path)


def test_the_store_s_head_catches_a_log_cut_short_rolled_back_or_grown(
    packages: tuple[Path, Path, Signer],
) -> None:
    from evidence import append_custody

    ours, _, signer = packages
    later = dt.datetime.now(dt.UTC)  # after the package's creation entry
    for i in range(2):
        append_custody(ours, "viewed", "wang", signer, later + dt.timedelta(minutes=i))
    log = read_log(ours)
    head = (3, log[-1]["hash"])
    assert verify_package(ours, custody_head=head) == []
    assert head_problems(log[:2], head)[0].startswith("custody log truncated: 2 entries")
    assert "rolled back" in head_problems(log, (3, "0" * 64))[0]
    assert "after the head" in head_problems(log, (2, log[1]["hash"]))[0]
    # appending against a head that is not the log's end writes nothing
    before = (ours / CUSTODY_LOG).read_bytes()
    with pytest.raises(Exception, match="ends at entry 3"):
        append_custody(ours, "viewed", "li", signer, later + dt.timedelta(hours=1),
                       expect=(2, log[1]["hash"]))  # fmt: skip
    assert (ours / CUSTODY_LOG).read_bytes() == before

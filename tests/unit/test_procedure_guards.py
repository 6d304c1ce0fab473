"""Issue #25: the review's items on the lifecycle's table, as guards decide them (no database):
A3 (a valid defence can be adopted), A4 (a confirmed case can be withdrawn and is then no prior
offence), A5 (a new decision stops the notice and the decision), B1 (a hearing can be asked
for), B5 (review after a hearing), B6 (the 负责人 decides; no one account alone), B7 (offline
statements), B11 (waterway cases end lawfully, and go to the competent agency)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import replace

import pytest

from offsite.config import ConsoleSettings
from sinks.accounts import HEAD, LEGAL_REVIEWER, OFFICER, PARTY
from sinks.casestore import CONFIRMED
from sinks.lifecycle import (
    CONFIRMED_STATES,
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

NOW = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 12, 1)
WANG = Actor("wang", frozenset({OFFICER}))
ZHAO = Actor("zhao", frozenset({LEGAL_REVIEWER}))
CHEN = Actor("chen", frozenset({HEAD}))
WANG_AND_HEAD = Actor("wang", frozenset({OFFICER, HEAD}))
PARTY_ACTOR = Actor(PARTY, frozenset({PARTY}))
RAN = (Past("confirm", "wang"), Past("issue_notice", "wang"), Past("serve_notice", "li"))


def facts(status: str, **kw: object) -> CaseFacts:
    base: dict[str, object] = dict(
        case_id="c1", status=status, plate="湘A12345", outcome="fine", fine_cny=2_500,
        violation_code="road.overload.gross", legal_review=False,
        notice_served=TODAY - dt.timedelta(days=30), statement_due=TODAY - dt.timedelta(days=1),
    )  # fmt: skip
    base.update(kw)
    return CaseFacts(**base)  # type: ignore[arg-type]


def plan(case: CaseFacts, action: str, actor: Actor, history: tuple[Past, ...] = RAN,
         policy: Policy | None = None, **kw: object) -> Transition:  # fmt: skip
    machine = Lifecycle(None, None, policy, clock=lambda: NOW)  # type: ignore[arg-type]
    return machine.plan(Context(case, actor, history, NOW, machine.policy),
                        Request(action, actor, **kw))  # type: ignore[arg-type]  # fmt: skip


def test_b6_the_head_decides_and_not_the_one_who_ran_the_case() -> None:
    # before: any officer decided, including the one who confirmed, notified and served
    with pytest.raises(RoleRefused):
        plan(facts("statement_received"), "decide", WANG, reason="事实清楚")
    with pytest.raises(TransitionRefused, match="参与了本案"):
        plan(facts("statement_received"), "decide", WANG_AND_HEAD, reason="事实清楚")
    assert plan(facts("statement_received"), "decide", CHEN, reason="事实清楚").target == "decided"


def test_no_one_account_withdraws_or_transfers_a_case_it_ran() -> None:
    # must-have 7 ("no one account runs a case alone"): before, an account holding the officer's
    # and the head's roles could confirm a case and then withdraw it or transfer it away alone
    for action, code in (("withdraw", "plate_misread"), ("transfer_agency", "maritime")):
        with pytest.raises(TransitionRefused, match="参与了本案"):
            plan(facts("confirmed"), action, WANG_AND_HEAD, reason_code=code)
        assert plan(facts("confirmed"), action, CHEN, reason_code=code).target in (
            "withdrawn", "transferred")  # fmt: skip


def test_a3_a_defence_that_holds_ends_in_no_penalty_after_the_notice() -> None:
    # before: only "decide" at the notified fine was offered from the notice's states
    for status in ("notice_issued", "statement_received"):
        t = plan(facts(status), "decide_no_penalty", CHEN, reason_code="art57_3")
        assert t.target == "not_punished"
    with pytest.raises(TransitionRefused, match="选择理由"):
        plan(facts("statement_received"), "decide_no_penalty", CHEN)
    assert "not_punished" not in CONFIRMED_STATES and "not_punished" not in CONFIRMED


def test_a4_a_confirmed_case_can_be_withdrawn_and_is_then_no_prior_offence() -> None:
    for status in ("confirmed", "approved", "notice_issued", "statement_received"):
        t = plan(facts(status), "withdraw", CHEN, reason_code="plate_misread")
        assert t.target == "withdrawn"
    with pytest.raises(RoleRefused):  # 撤销立案 is the 负责人's
        plan(facts("confirmed"), "withdraw", WANG, reason_code="plate_misread")
    assert "withdrawn" not in CONFIRMED_STATES and "withdrawn" not in CONFIRMED
    # a no_penalty case (first offence, time-barred) ends in 不予行政处罚 instead of staying
    t = plan(facts("confirmed", outcome="no_penalty", fine_cny=None), "decide_no_penalty", CHEN,
             (), reason_code="art33")  # fmt: skip
    assert t.target == "not_punished"


def test_a5_a_new_decision_stops_the_notice_and_the_decision() -> None:
    new = {"review_reason": "decided again after an officer confirmed it: now no_penalty"}
    with pytest.raises(TransitionRefused, match="重新作出决定"):
        plan(facts("confirmed", **new), "issue_notice", WANG, ())
    with pytest.raises(TransitionRefused, match="重新作出决定"):
        plan(facts("legal_review", **new), "approve", ZHAO, (), reason="事实清楚")
    with pytest.raises(TransitionRefused, match="重新作出决定"):
        plan(facts("statement_received", **new), "decide", CHEN, reason="事实清楚")
    # what the new decision may call for stays open
    assert plan(facts("statement_received", **new), "decide_no_penalty", CHEN,
                reason_code="art57_3").target == "not_punished"  # fmt: skip


def test_a5_a_notified_case_decided_again_is_not_decided_at_the_stale_fine() -> None:
    # review A5's repro (probe_lifecycle line 6b): a notice_issued case whose rules decided again
    # (now no_penalty); before, "decide" took the stale fine and "reopen" was refused, so the
    # new decision could not be acted on. 行政处罚法 Art. 57: the 负责人 decides on the facts.
    new = {"review_reason": "decided again after an officer confirmed it: now no_penalty"}
    stale = facts("notice_issued", **new)
    with pytest.raises(TransitionRefused, match="重新作出决定"):
        plan(stale, "decide", CHEN, reason="事实清楚")
    assert plan(stale, "decide_no_penalty", CHEN, reason_code="art57_3").target == "not_punished"
    assert plan(stale, "withdraw", CHEN, reason_code="plate_misread").target == "withdrawn"


def test_b1_the_party_asks_for_a_hearing_within_its_period_and_the_decision_waits() -> None:
    open_ = facts("notice_issued", hearing_due=TODAY, statement_due=TODAY + dt.timedelta(days=9))
    assert plan(open_, "request_hearing", PARTY_ACTOR).target == "hearing_requested"
    assert plan(open_, "request_hearing", WANG).target == "hearing_requested"  # offline
    late = facts("notice_issued", hearing_due=TODAY - dt.timedelta(days=1))
    with pytest.raises(TransitionRefused, match="届满"):
        plan(late, "request_hearing", PARTY_ACTOR)
    with pytest.raises(TransitionRefused, match="未告知听证权利"):
        plan(facts("notice_issued"), "request_hearing", PARTY_ACTOR)
    with pytest.raises(TransitionRefused, match="不能执行"):  # a request is open
        plan(facts("hearing_requested"), "decide", CHEN, reason="事实清楚")


def test_b5_a_major_case_is_reviewed_again_after_its_hearing() -> None:
    major = Policy(major_fine_cny_at_least=10_000)
    heard = facts("heard", fine_cny=12_000)
    held = (*RAN, Past("hold_hearing", "wang"))
    with pytest.raises(TransitionRefused, match="第五十八条"):
        plan(heard, "decide", CHEN, held, major, reason="依听证笔录")
    reviewed = (*held, Past("review_after_hearing", "zhao"))
    with pytest.raises(TransitionRefused, match="集体讨论"):  # B6: major, decided collectively
        plan(heard, "decide", CHEN, reviewed, major, reason="依听证笔录")
    discussed = (*reviewed, Past("collective_discussion", "chen"))
    assert plan(heard, "decide", CHEN, discussed, major, reason="依听证笔录").target == "decided"
    # not major: decided on the record without a second review
    assert plan(facts("heard"), "decide", CHEN, held, reason="依听证笔录").target == "decided"


def test_b5_the_legal_review_before_the_notice_is_a_written_opinion() -> None:
    # review B5: "approve's opinion is optional"; 行政处罚法 Art. 58: 法制审核 is an opinion on
    # the facts, the basis and the procedure, kept in the file (the 法制审核意见书 of the 副卷)
    with pytest.raises(TransitionRefused, match="须填写理由"):
        plan(facts("legal_review"), "approve", ZHAO, RAN)
    with pytest.raises(TransitionRefused, match="须填写理由"):
        plan(facts("legal_review"), "approve", ZHAO, RAN, reason="   ")
    with pytest.raises(TransitionRefused, match="须填写理由"):
        plan(facts("heard"), "review_after_hearing", ZHAO, RAN)
    assert plan(facts("legal_review"), "approve", ZHAO, RAN, reason="事实清楚").target == "approved"


def test_b7_an_officer_records_a_statement_received_offline() -> None:
    # before: only the party (online) could submit; a mailed statement could not be attached
    open_ = facts("notice_issued", statement_due=TODAY)
    assert plan(open_, "record_statement", WANG).target == "statement_received"


def test_b11_a_waterway_case_ends_lawfully_and_goes_to_the_competent_agency() -> None:
    water = facts("confirmed", violation_code="water.dredging", outcome="review", fine_cny=None,
                  plate=None)  # fmt: skip
    t = plan(water, "transfer_agency", CHEN, (), reason_code="water")
    assert t.target == "transferred"
    assert plan(water, "withdraw", CHEN, (), reason_code="device_fault").target == "withdrawn"


def test_b4_the_hearing_threshold_depends_on_the_kind_of_party() -> None:
    # review B4's repro: a 2-axle truck of a private person, fine 1,000 yuan. Under the Hunan
    # amounts (公民 1,000, 法人或其他组织 20,000; the shipped default) the party must be told of
    # 听证; a company fined the same is not. A party not known yet gets the lower amount.
    p = ConsoleSettings().policy()
    assert p.hearing(1_000, "citizen") and not p.hearing(999, "citizen")
    assert not p.hearing(1_000, "organization") and p.hearing(20_000, "organization")
    assert p.hearing(1_000, None)
    assert not Policy().hearing(1_000_000, "citizen")  # no amounts configured: none


AMEND = {
    "reason": "当事人提交的过磅单证明超限数额较小",
    "payload": {
        "outcome": "fine",
        "fine_cny": "1500",
        "tier_name": "超限1000千克以上",
        "facts": "过磅单",
    },
}


def test_a3_an_officer_amends_the_proposal_after_the_notice_and_a_new_notice_follows() -> None:
    # before: no transition changed the proposal after the notice ("未知的操作 amend_proposal")
    for status in ("notice_issued", "statement_received", "heard"):
        assert plan(facts(status), "amend_proposal", WANG, **AMEND).target == "amended"
    with pytest.raises(TransitionRefused, match="尚未送达"):  # the party was not told yet
        plan(facts("notice_issued", notice_served=None), "amend_proposal", WANG, **AMEND)
    with pytest.raises(RoleRefused):  # an officer proposes; the 负责人 decides
        plan(facts("statement_received"), "amend_proposal", CHEN, **AMEND)
    with pytest.raises(TransitionRefused, match="须填写理由"):
        plan(facts("statement_received"), "amend_proposal", WANG, payload=AMEND["payload"])
    with pytest.raises(TransitionRefused, match="规则引擎提出"):  # a road case: after the notice
        plan(facts("confirmed"), "amend_proposal", WANG, (), **AMEND)
    # the amended proposal is notified again before any decision; a major one is reviewed
    amended = facts("amended")
    assert plan(amended, "issue_notice", WANG).target == "notice_issued"
    with pytest.raises(TransitionRefused, match="不能执行"):
        plan(amended, "decide", CHEN, reason="事实清楚")
    major = Policy(major_fine_cny_at_least=1_000)
    assert plan(amended, "submit_legal_review", WANG, policy=major).target == "legal_review"
    with pytest.raises(TransitionRefused, match="法制审核"):
        plan(amended, "issue_notice", WANG, policy=major)
    # and it counts as a confirmed case (prior offences)
    assert "amended" in CONFIRMED_STATES and "amended" in CONFIRMED


def test_a3_a_decision_heavier_than_the_notice_in_force_is_refused() -> None:
    # 行政处罚法 Art. 45 (2): no heavier penalty for a defence. Before, decide took the case's
    # fine whatever the notice had told the party.
    told = {"notified_outcome": "fine", "notified_fine_cny": 2_000}
    with pytest.raises(TransitionRefused, match="第四十五条"):
        plan(facts("statement_received", fine_cny=2_500, **told), "decide", CHEN, reason="事实清楚")
    warned = {"notified_outcome": "warning", "notified_fine_cny": None}
    with pytest.raises(TransitionRefused, match="重新制作并送达"):
        plan(facts("statement_received", **warned), "decide", CHEN, reason="事实清楚")
    for fine in (2_000, 1_500):  # the notified fine or a lighter one is decided
        t = plan(
            facts("statement_received", fine_cny=fine, **told), "decide", CHEN, reason="事实清楚"
        )
        assert t.target == "decided"


def test_a5_a_new_decision_after_the_notice_reopens_into_the_amend_path() -> None:
    # review A5: "reopen" was not offered after the notice; now it leads to a new proposal and a
    # new notice (not only 撤销 / 不予处罚)
    new = {"review_reason": "decided again after an officer confirmed it: now fine 1000 CNY"}
    machine = Lifecycle(None, None, clock=lambda: NOW)  # type: ignore[arg-type]
    for status in ("notice_issued", "statement_received", "hearing_requested", "heard"):
        stale = facts(status, **new)
        assert "reopen" in [t.action for t in machine.offered(stale, {OFFICER})]
        assert plan(stale, "reopen", WANG, reason="规则重新计算").target == "amended"
        with pytest.raises(TransitionRefused, match=r"重新作出决定|不能执行"):  # reopened first
            plan(stale, "amend_proposal", WANG, **AMEND)
    with pytest.raises(TransitionRefused, match="没有待复核"):
        plan(facts("statement_received"), "reopen", WANG, reason="规则重新计算")
    # pre-notice reopening still goes back to the officer's review
    assert plan(facts("confirmed", **new), "reopen", WANG, reason="复核").target == "pending_review"


def test_b11_a_waterway_case_gets_its_fine_proposed_by_the_officer_or_is_transferred() -> None:
    # before: a waterway case could never get a notice ("系统未拟定处罚"), so never be fined
    # an agency that holds the 海事 power over over-draught (console.water_fine_codes; none by default)
    policy = ConsoleSettings(water_fine_codes=["water.overdraught"]).policy()
    water = facts("confirmed", violation_code="water.overdraught", outcome="review",
                  fine_cny=None, plate=None, notice_served=None)  # fmt: skip
    fine = {"reason": "超载", "payload": {"outcome": "fine", "fine_cny": "30000",
                                         "tier_name": "超载10%以下", "facts": "吃水超载重线"}}  # fmt: skip
    assert plan(water, "amend_proposal", WANG, (), policy, **fine).target == "amended"
    with pytest.raises(TransitionRefused, match="系统未拟定处罚"):
        plan(replace(water, status="amended"), "issue_notice", WANG, (), policy)
    proposed = replace(water, status="amended", outcome="fine", fine_cny=30_000)
    # 20,000 yuan and more is a major decision (the default catalogue): 法制审核, then the notice
    assert plan(proposed, "submit_legal_review", WANG, (), policy).target == "legal_review"
    approved = replace(proposed, status="approved")
    assert plan(approved, "issue_notice", WANG, (), policy).target == "notice_issued"
    # dredging is the 水行政主管部门's; an agency without the 海事 powers transfers every one
    dredging = replace(water, violation_code="water.dredging")
    with pytest.raises(TransitionRefused, match="水行政主管部门"):
        plan(dredging, "amend_proposal", WANG, (), policy, **fine)
    with pytest.raises(TransitionRefused, match="海事管理机构"):
        plan(water, "amend_proposal", WANG, (), Policy(), **fine)
    with pytest.raises(TransitionRefused, match="海事管理机构"):  # the default settings
        plan(water, "amend_proposal", WANG, (), ConsoleSettings().policy(), **fine)


def test_b7_no_decision_while_a_statement_has_no_review_opinion() -> None:
    # review B7 / must-have 5 (行政处罚法 Art. 45: 对当事人提出的事实、理由和证据，应当进行复核):
    # before, the 负责人 decided with the party's statement unanswered
    served = TODAY - dt.timedelta(days=30)
    over = facts("statement_received", statement_due=TODAY - dt.timedelta(days=1),
                 notice_served=served)  # fmt: skip
    with pytest.raises(TransitionRefused, match="1 份未作复核意见"):
        plan(dataclasses.replace(over, unreviewed_statements=1), "decide", CHEN, RAN,
             reason="事实清楚")  # fmt: skip
    assert plan(over, "decide", CHEN, RAN, reason="事实清楚").target == "decided"
    # a 不予行政处罚 is a decision too: the statement is reviewed first (before: it was not)
    with pytest.raises(TransitionRefused, match="1 份未作复核意见"):
        plan(dataclasses.replace(over, unreviewed_statements=1), "decide_no_penalty", CHEN,
             RAN, reason_code="art57_3")  # fmt: skip
    assert plan(over, "decide_no_penalty", CHEN, reason_code="art57_3").target == "not_punished"

"""The case lifecycle: one state machine over the case store, for the console and every later tool.

States and transitions are data (``STATES``, ``TRANSITIONS``); a later tool (payment, 抄告,
credit records, appeals) adds its states and transitions to the table, its guards and effects
beside them, and a migration that widens ``cases_status_check`` — :class:`Lifecycle` itself
does not change. ::

    pending_review ─confirm─► confirmed ─(major: submit_legal_review)─► legal_review
      │  ▲ correct_plate        │                                   approve │ send_back
      │  └──────────────────────┼──── sent_back ◄──────────────────────────┤
      ├─reject─► rejected       │       └─resubmit─► legal_review           ▼
      └─transfer─► transferred  └──────────issue_notice (not major)───► approved
                                                                          │ issue_notice
    notice_issued ─submit_statement (party)─► statement_received          ▼
      └─decide (deadline passed) ─► decided ◄─decide─┘            notice_issued
                                      └─close─► closed

A transition runs in one PostgreSQL transaction holding the case's row lock: the guards see
the case as it is, the effect writes its rows, the status changes, a signed entry is appended
to the evidence package's custody log, and the transition row and the log's new head are
written. The custody entry is fsynced before the commit: if the commit then fails, the log is
one entry ahead of the store and ``offsite evidence verify`` says so — an action is never in
the store without its custody entry.

OffsiteError
└── LifecycleError       the case cannot take the action; ``message`` is for the officer (Chinese)
    ├── CaseNotFound
    ├── RoleRefused      the actor holds none of the roles the action needs
    ├── TransitionRefused    not from this state, a reason is missing, or a guard refused
    └── CustodyError     the evidence package is missing, or its log does not end where the
                         store recorded it (cut short, rolled back, or written behind its back)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, Protocol

import asyncpg

from events import DatabaseError, OffsiteError, Violation
from events.clock import Clock
from events.water import AGENCY as WATER_AGENCY
from events.water import FINE_RANGE as WATER_FINE_RANGE
from events.water import LEGAL_BASIS as WATER_LEGAL_BASIS

from .accounts import HEAD, LEGAL_REVIEWER, OFFICER, PARTY

STATES: dict[str, str] = {
    "pending_review": "待审核",
    "confirmed": "已确认",
    "rejected": "已驳回",
    "transferred": "已移送公安机关",
    "legal_review": "法制审核中",
    "approved": "法制审核通过",
    "sent_back": "法制审核退回",
    "notice_issued": "已告知（违法行为通知书）",
    "statement_received": "已收到陈述申辩",
    "decided": "已作出处罚决定",
    "closed": "已结案",
    # issue #25: the general procedure (one block: the merge may move it to the names' table)
    "hearing_requested": "当事人已申请听证",
    "heard": "听证已举行",
    "not_punished": "不予行政处罚",
    "withdrawn": "已撤销立案",
    "revoked": "已撤销行政处罚决定",  # issue #26: a decision revoked after it was made
    # review A3/A5/B11: the proposal changed after the notice (or a waterway case's first
    # proposal); a new notice is served before any decision
    "amended": "已变更拟处罚意见（待重新告知）",
}
# the states in which an officer has confirmed the case: its history counts (first offence,
# repeat tiers, Art. 46's threshold)
# (a withdrawn or unpunished case is no prior offence: Art. 33, 57 (2)/(3))
CONFIRMED_STATES = frozenset(
    {"confirmed", "legal_review", "approved", "notice_issued", "statement_received", "decided",
     "closed", "hearing_requested", "heard", "amended"}
)  # fmt: skip
FINAL_STATES = frozenset(
    {"rejected", "transferred", "closed", "not_punished", "withdrawn", "revoked"}
)

# 撤销立案 (issue #25, review A4): the case ends before a decision; it is no prior offence
WITHDRAW_REASONS: dict[str, str] = {
    "facts_not_established": "违法事实不能成立",
    "plate_misread": "车牌识别错误",
    "device_fault": "设备故障或数据异常",
    "valid_permit": "持有有效超限运输许可",
    "confirmed_by_mistake": "误确认",
    "other": "其他（须说明）",
}
# 不予行政处罚 (行政处罚法 Art. 57 (2)/(3), Art. 33): a 不予行政处罚决定书
NO_PENALTY_REASONS: dict[str, str] = {
    "art57_2": "违法行为轻微，依法可以不予行政处罚（第五十七条第一款第（二）项）",
    "art57_3": "违法事实不能成立（第五十七条第一款第（三）项）",
    "art33": "初次违法且危害后果轻微并及时改正（第三十三条第一款）",
}
# 撤销行政处罚决定 (issue #26): the decision is revoked (by the 负责人) after 复议 or 诉讼, or an
# error found (行政处罚法 Art. 75 (2) 发现有错误的，应当主动改正); it is no prior offence, and its
# 双公示 is withdrawn (cases.publication)
REVOKE_REASONS: dict[str, str] = {
    "reconsideration": "行政复议决定撤销",
    "litigation": "人民法院判决撤销",
    "error_found": "发现原处罚决定有错误，本机关主动撤销",
    "other": "其他（须说明）",
}
# 移送 to the competent agency (Art. 27; review B11): not only the police
TRANSFER_AGENCIES: dict[str, str] = {
    "police": "公安机关",
    "maritime": "海事管理机构",
    "water": "水行政主管部门",
    "judicial": "司法机关",
    "other": "其他有管辖权的机关（须说明）",
}

REJECT_REASONS: dict[str, str] = {
    "plate_misread": "车牌识别错误",
    "device_fault": "设备故障或数据异常",
    "valid_permit": "持有有效超限运输许可",
    "duplicate": "重复案件",
    "other": "其他（须说明）",
}


class LifecycleError(OffsiteError):
    """A case cannot take an action. ``message`` is shown to the officer as it is."""

    def __init__(self, message: str, case_id: str | None = None) -> None:
        self.message, self.case_id = message, case_id
        super().__init__(f"{case_id}: {message}" if case_id else message)


class CaseNotFound(LifecycleError):
    pass


class RoleRefused(LifecycleError):
    pass


class TransitionRefused(LifecycleError):
    pass


class CustodyError(LifecycleError):
    pass


class Head(NamedTuple):
    """The last entry of a custody log: its sequence number (the log's length) and hash."""

    length: int
    hash: str | None  # None: any (the creation entry, before the store recorded a head)


class CustodyLog(Protocol):
    """Where a case's custody entries go: its evidence package (``evidence.custody``)."""

    def append(
        self, case_id: str, event: str, actor: str, ts: dt.datetime, detail: str, expect: Head
    ) -> Head:
        """Append one signed, fsynced entry to the case's log and return the new head.
        ``expect``: where the log must end now. Raises :class:`CustodyError` when the package
        is missing or its log ends elsewhere; nothing is written then. Blocking."""
        ...


@dataclass(frozen=True)
class Actor:
    name: str  # the account's user name, or "party"
    roles: frozenset[str]


class Due(Protocol):
    """A deadline as :func:`cases.calendar.deadline` computes it."""

    @property
    def due(self) -> dt.date: ...
    @property
    def provisional(self) -> bool: ...


# (start, days, told) → the deadline: the one computation of deadlines (cases.calendar), which
# the composition root binds to the working-day calendar
DeadlineRule = Callable[[dt.date, int, dt.date | None], Due]


@dataclass(frozen=True)
class Policy:
    """The agency's settings the lifecycle decides by. Major decisions (重大执法决定) are the
    agency's catalogue: a fine from ``major_fine_cny_at_least``, a code in
    ``major_violation_codes``, or a decision its baseline marked for legal review."""

    major_fine_cny_at_least: int | None = None
    major_violation_codes: frozenset[str] = frozenset()
    statement_days: int = 15  # time the party has for 陈述、申辩 after the notice
    hearing_fine_cny_at_least: int | None = None  # 较大数额罚款: the party may ask for 听证
    # the province's amount for a 法人或其他组织 (review B4: it differs from a 公民's); None: the
    # same as a 公民's
    hearing_fine_cny_at_least_organization: int | None = None
    hearing_request_days: int = 5  # 行政处罚法 Art. 64 (1): within 5 days of being told
    utc_offset_hours: int = 8
    notice_prefix: str = "超限"  # the agency's code, e.g. 湘交执超通 (review D.11)
    # the agency's code on its 行政处罚决定书, e.g. 湘交执超罚; blank: notice_prefix + 罚
    decision_prefix: str = ""
    # where the party turns for 陈述、申辩 and 听证: address, telephone (review D.7)
    agency_contact: str = ""
    # the waterway codes whose fines this agency imposes (its 权责清单: where the province gave
    # the 海事管理机构's penalties to the transport agency); any other waterway case is
    # transferred to the competent agency (events.water.AGENCY)
    water_fine_codes: frozenset[str] = frozenset()
    # working days and holidays (Art. 85); without it no deadline can be set, so no notice
    deadline: DeadlineRule | None = None

    @property
    def tz(self) -> dt.timezone:
        return dt.timezone(dt.timedelta(hours=self.utc_offset_hours))

    def is_major(self, case: CaseFacts) -> bool:
        fine = case.fine_cny or 0
        return (
            case.legal_review
            or case.violation_code in self.major_violation_codes
            or (self.major_fine_cny_at_least is not None and fine >= self.major_fine_cny_at_least)
        )

    def due(self, start: dt.date, days: int, told: dt.date | None = None) -> Due:
        if self.deadline is None:
            raise LifecycleError("未配置工作日历（configs/holidays.yaml），不能计算期限")
        return self.deadline(start, days, told)

    def hearing(self, fine_cny: int | None, party_kind: str | None = None) -> bool:
        """Whether the party may ask for a hearing: the amount of the party's kind; a party
        not known yet is given the lower amount (the right is not lost to a missing fact)."""
        citizen = self.hearing_fine_cny_at_least
        org = self.hearing_fine_cny_at_least_organization
        org = citizen if org is None else org
        kinds = {"citizen": [citizen], "organization": [org]}.get(party_kind or "", [citizen, org])
        limits = [t for t in kinds if t is not None]
        return bool(limits) and fine_cny is not None and fine_cny >= min(limits)


@dataclass(frozen=True)
class CaseFacts:
    """What the lifecycle knows of a case when it decides: its row, under the lock."""

    case_id: str
    status: str
    plate: str | None
    outcome: str
    fine_cny: int | None
    violation_code: str
    legal_review: bool  # the baseline marked the decision for legal review
    review_reason: str | None = None
    statement_due: dt.date | None = None  # from the notice, once served
    hearing_due: dt.date | None = None  # the last day to ask for a hearing, once served
    notice_served: dt.date | None = None  # the day the notice counts as served (送达)
    # what the case's current notice proposed (Art. 45: the decision is never heavier)
    notified_outcome: str | None = None
    notified_fine_cny: int | None = None
    unreviewed_statements: int = 0  # the party's statements with no 复核意见 yet (Art. 45)


class Past(NamedTuple):
    """A transition the case went through, as guards see it."""

    action: str
    actor: str


@dataclass(frozen=True)
class Context:
    case: CaseFacts
    actor: Actor
    history: Sequence[Past]
    now: dt.datetime
    policy: Policy


Guard = Callable[[Context], str | None]  # None: allowed; else why not (Chinese)


@dataclass(frozen=True)
class Request:
    action: str
    actor: Actor
    reason_code: str | None = None
    reason: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """One edge of the state machine. ``reason``: none, optional, required, or coded (one of
    ``reason_codes``; "other" needs text). ``effect``: the name of an effect run in the
    transaction. ``then``: an action tried right after, by the same actor, when its guards
    allow (a confirmed major decision goes on to legal review)."""

    action: str
    label: str
    sources: frozenset[str]
    target: str | None  # None: the case stays in its state (a record: service, a correction)
    roles: frozenset[str]
    reason: Literal["none", "optional", "required", "coded"] = "none"
    reason_codes: Mapping[str, str] = field(default_factory=dict)
    guards: tuple[Guard, ...] = ()
    effect: str | None = None
    then: str | None = None


# --- guards ------------------------------------------------------------------------------------


def is_water(case: CaseFacts) -> bool:
    """A waterway case (``water.*``): always ``review`` with its legal basis, never a fine —
    the waterway amounts are not verified (◐, DOMAIN.md) — and it names a vessel, not a plate."""
    return case.violation_code.startswith("water.")


def has_proposal(ctx: Context) -> str | None:
    if is_water(ctx.case):
        return None  # the officer confirms the facts; what follows is decided outside
    if ctx.case.outcome not in ("fine", "warning", "no_penalty"):
        return "该案件未提出处理意见（测量或车牌不可采信，转人工审核）：请更正事实、驳回或移送"
    return None


def is_major(ctx: Context) -> str | None:
    return None if ctx.policy.is_major(ctx.case) else "非重大执法决定，无须法制审核"


def not_major(ctx: Context) -> str | None:
    if ctx.policy.is_major(ctx.case):
        return "重大执法决定须经法制审核通过后方可告知当事人"
    return None


def penalty_proposed(ctx: Context) -> str | None:
    if is_water(ctx.case) and ctx.case.outcome != "fine":  # the officer proposes it (B11)
        return "水上案件罚款数额未经官方文本核对，系统未拟定处罚，不能送达违法行为通知书"
    if ctx.case.outcome not in ("fine", "warning"):
        return "该案件未拟处罚，无须送达违法行为通知书"
    return None


REVIEWING_ACTIONS = frozenset({"confirm", "resubmit", "correct_plate", "amend_proposal"})


def separation_of_duties(ctx: Context) -> str | None:
    """审核分离: whoever confirmed the case (or changed its facts) does not review it."""
    if any(p.actor == ctx.actor.name and p.action in REVIEWING_ACTIONS for p in ctx.history):
        return "审核分离：您参与了本案的审核确认，不能对本案进行法制审核"
    return None


def party_heard(ctx: Context) -> str | None:
    """No decision without a served notice (Art. 44, 62), nor before the periods it opened
    end: the party may add to a statement, or ask for a hearing, until their last day (Art. 64
    (1)); both run from the day of service."""
    if ctx.case.notice_served is None:
        return "违法行为通知书尚未送达当事人，不能作出处罚决定"
    today = ctx.now.astimezone(ctx.policy.tz).date()
    for due, what in ((ctx.case.statement_due, "陈述、申辩"), (ctx.case.hearing_due, "申请听证")):
        if due is not None and today <= due:
            return f"当事人{what}期限（{due.isoformat()}）未届满，不能作出处罚决定"
    return None


def statements_reviewed(ctx: Context) -> str | None:
    """Every statement has its 复核意见 before the decision (review B7; 行政处罚法 Art. 45:
    对当事人提出的事实、理由和证据，应当进行复核)."""
    if n := ctx.case.unreviewed_statements:
        return f"当事人的陈述、申辩尚有 {n} 份未作复核意见（行政处罚法第四十五条），不能作出决定"
    return None


def within_statement_period(ctx: Context) -> str | None:
    due = ctx.case.statement_due
    if due is not None and ctx.now.astimezone(ctx.policy.tz).date() > due:
        return f"陈述、申辩期限已于 {due.isoformat()} 届满"
    return None


def within_hearing_period(ctx: Context) -> str | None:
    """A hearing is asked for within 5 working days of the notice's service (Art. 64 (1))."""
    due = ctx.case.hearing_due
    if due is None:
        return "本案未告知听证权利，或违法行为通知书尚未送达"
    if ctx.now.astimezone(ctx.policy.tz).date() > due:
        return f"申请听证期限已于 {due.isoformat()} 届满"
    return None


RUNNING_ACTIONS = frozenset(
    {"confirm", "issue_notice", "serve_notice", "resubmit", "correct_plate", "amend_proposal"}
)


def not_alone(ctx: Context) -> str | None:
    """No one account runs a case alone (Art. 42, 57): the 负责人 who decides did not confirm,
    notify or serve it."""
    if any(p.actor == ctx.actor.name and p.action in RUNNING_ACTIONS for p in ctx.history):
        return "您参与了本案的调查、告知或送达，不能对本案作出决定"
    return None


def no_new_decision(ctx: Context) -> str | None:
    """A case the rules decided again after its confirmation goes no further until an officer
    has looked at it (review A5): the new outcome may be lighter."""
    if ctx.case.review_reason:
        return f"规则引擎已重新作出决定，须先复核：{ctx.case.review_reason}"
    return None


def discussed(ctx: Context) -> str | None:
    """A major case (the agency's catalogue of 重大执法决定) is decided by the 负责人 collectively
    (行政处罚法 Art. 57 (2): 对情节复杂或者重大违法行为给予行政处罚，行政机关负责人应当集体讨论决定)."""
    if not ctx.policy.is_major(ctx.case) or any(
        p.action == "collective_discussion" for p in ctx.history
    ):
        return None
    return "重大违法行为须经行政机关负责人集体讨论决定（行政处罚法第五十七条第二款）"


def reviewed_after_hearing(ctx: Context) -> str | None:
    """A major case decided after a hearing is reviewed again first (Art. 58 (2))."""
    if ctx.case.status != "heard" or not ctx.policy.is_major(ctx.case):
        return None
    held = max((i for i, p in enumerate(ctx.history) if p.action == "hold_hearing"), default=-1)
    if any(p.action == "review_after_hearing" for p in ctx.history[held + 1 :]):
        return None
    return "重大执法决定经过听证程序的，须经法制审核后方可作出决定（行政处罚法第五十八条）"


# how heavy a proposal is: a fine weighs by its amount (cases.art37 weighs the same way)
_WEIGHT = {"no_penalty": 0, "warning": 1, "fine": 2}


def heavier(outcome: str, fine_cny: int | None, than: str, than_fine: int | None) -> bool:
    return (_WEIGHT.get(outcome, 3), fine_cny or 0) > (_WEIGHT.get(than, 3), than_fine or 0)


def not_heavier_than_notified(ctx: Context) -> str | None:
    """行政处罚法 Art. 45 (2): "行政机关不得因当事人陈述、申辩而给予更重的处罚": the decision is
    never heavier than what the notice in force told the party; a heavier one is proposed
    again (变更拟处罚意见) and notified anew."""
    c = ctx.case
    if c.notified_outcome is None or not heavier(
        c.outcome, c.fine_cny, c.notified_outcome, c.notified_fine_cny
    ):
        return None
    return ("拟作出的处罚重于违法行为通知书告知的处罚（行政处罚法第四十五条）：须变更拟处罚意见，"
            "重新制作并送达违法行为通知书")  # fmt: skip


def may_amend(ctx: Context) -> str | None:
    """变更拟处罚意见: after the notice was served (the party's statement or the hearing showed
    the proposal wrong), or after a reopening; a waterway case gets its first proposal from the
    officer (the system proposes no waterway fine) when this agency may impose it."""
    c = ctx.case
    code = c.violation_code
    if is_water(c) and (code not in ctx.policy.water_fine_codes or code not in WATER_FINE_RANGE):
        agency = WATER_AGENCY.get(code, "有管辖权的机关")
        return (f"本机关对该水上违法行为无处罚权，请移送{agency}"
                "（移送有管辖权的机关）")  # fmt: skip
    if c.status == "confirmed" and not is_water(c):
        return "道路案件的拟处罚意见由规则引擎提出；送达违法行为通知书后方可变更"
    if c.status in _NOTIFIED | {"heard"} and c.notice_served is None:
        return "违法行为通知书尚未送达当事人，不能变更拟处罚意见"
    return None


def has_plate(ctx: Context) -> str | None:
    return "船舶案件没有车牌，不能更正车牌" if is_water(ctx.case) else None


def needs_another_look(ctx: Context) -> str | None:
    return None if ctx.case.review_reason else "该案件没有待复核的新决定"


_OFFICER = frozenset({OFFICER})
_LEGAL = frozenset({LEGAL_REVIEWER})
_HEAD = frozenset({HEAD})
_REVIEWABLE = frozenset({"pending_review", "sent_back"})
# a case opened (立案) and not yet decided
_OPEN = frozenset({"confirmed", "legal_review", "approved", "sent_back", "notice_issued",
                   "statement_received", "hearing_requested", "heard", "amended"})  # fmt: skip
_NOTIFIED = frozenset({"notice_issued", "statement_received"})
# after the notice, until the decision: a new decision of the rules reopens the case into the
# amended proposal (review A5)
_AFTER_NOTICE = frozenset({"notice_issued", "statement_received", "hearing_requested", "heard"})

TRANSITIONS: tuple[Transition, ...] = (
    Transition("confirm", "确认", frozenset({"pending_review"}), "confirmed", _OFFICER,
               "optional", guards=(has_proposal,), then="submit_legal_review"),
    Transition("reject", "驳回", _REVIEWABLE, "rejected", _OFFICER, "coded", REJECT_REASONS),
    Transition("transfer", "移送公安机关", _REVIEWABLE, "transferred", _OFFICER, "required"),
    Transition("correct_plate", "更正车牌", _REVIEWABLE, "pending_review", _OFFICER, "required",
               guards=(has_plate,), effect="correct_plate"),
    Transition("submit_legal_review", "提交法制审核", frozenset({"confirmed", "amended"}),
               "legal_review",
               _OFFICER, guards=(is_major,)),
    # 法制审核: a written opinion by a reviewer with 法律职业资格 (review B5; Art. 58)
    Transition("approve", "法制审核通过", frozenset({"legal_review"}), "approved", _LEGAL,
               "required", guards=(separation_of_duties, no_new_decision),
               effect="legal_opinion"),
    Transition("send_back", "退回", frozenset({"legal_review"}), "sent_back", _LEGAL, "required"),
    Transition("resubmit", "重新提交法制审核", frozenset({"sent_back"}), "legal_review", _OFFICER,
               "required", guards=(is_major,)),
    Transition("issue_notice", "制作违法行为通知书", frozenset({"approved"}), "notice_issued",
               _OFFICER, guards=(penalty_proposed, no_new_decision), effect="issue_notice"),
    # a decision that is not major goes from the officer's confirmation to the notice
    Transition("issue_notice", "制作违法行为通知书", frozenset({"confirmed", "amended"}),
               "notice_issued",
               _OFFICER, guards=(penalty_proposed, not_major, no_new_decision),
               effect="issue_notice"),
    Transition("submit_statement", "提交陈述申辩", frozenset({"notice_issued", "statement_received"}),
               "statement_received", frozenset({PARTY}), guards=(within_statement_period,),
               effect="store_statement"),
    # a statement received offline (by post, in person), recorded by an officer (review B7)
    Transition("record_statement", "登记书面陈述申辩", _NOTIFIED, "statement_received", _OFFICER,
               guards=(within_statement_period,), effect="store_statement"),
    Transition("request_hearing", "申请听证", _NOTIFIED, "hearing_requested",
               frozenset({PARTY, OFFICER}), guards=(within_hearing_period,)),
    Transition("hold_hearing", "听证结束（附听证笔录）", frozenset({"hearing_requested"}), "heard",
               _OFFICER, "required", effect="hold_hearing"),
    Transition("review_after_hearing", "听证后法制审核通过", frozenset({"heard"}), None, _LEGAL,
               "required", guards=(separation_of_duties,), effect="legal_opinion"),
    Transition("collective_discussion", "负责人集体讨论（附讨论记录）",
               frozenset({"notice_issued", "statement_received", "heard"}), None, _HEAD,
               "required", effect="record_discussion"),
    Transition("decide", "作出处罚决定", frozenset({"notice_issued", "statement_received", "heard"}),
               "decided", _HEAD, "required",
               guards=(party_heard, statements_reviewed, not_alone, no_new_decision,
                       reviewed_after_hearing, discussed, not_heavier_than_notified)),
    # Art. 45 reviews every statement before any decision, a 不予行政处罚 one too
    Transition("decide_no_penalty", "不予行政处罚", _OPEN - {"legal_review"}, "not_punished",
               _HEAD, "coded", NO_PENALTY_REASONS, guards=(statements_reviewed, not_alone)),
    # the 负责人's other decisions on an opened case: never by one who ran it (Art. 42, 57)
    Transition("withdraw", "撤销立案", _OPEN, "withdrawn", _HEAD, "coded", WITHDRAW_REASONS,
               guards=(not_alone,)),
    Transition("transfer_agency", "移送有管辖权的机关", _OPEN, "transferred", _HEAD, "coded",
               TRANSFER_AGENCIES, guards=(not_alone,)),
    Transition("close", "结案", frozenset({"decided"}), "closed", _OFFICER, "optional"),
    Transition("revoke_decision", "撤销行政处罚决定", frozenset({"decided", "closed"}), "revoked",
               _HEAD, "coded", REVOKE_REASONS),
    # a confirmed case decided again (the rules changed) that needs another look
    Transition("reopen", "重新审核", frozenset({"confirmed", "legal_review", "approved",
               "sent_back"}), "pending_review", _OFFICER, "required",
               guards=(needs_another_look,), effect="clear_review_reason"),
    # after the notice a new decision is looked at in the amend path: a new notice is served
    # before any decision (review A5)
    Transition("reopen", "重新审核", _AFTER_NOTICE, "amended", _OFFICER, "required",
               guards=(needs_another_look,), effect="clear_review_reason"),
    # 变更拟处罚意见 (review A3, B11; Art. 45): the amount, tier and basis proposed anew, with the
    # facts adopted; a major case goes to 法制审核 again, and a new notice is served
    Transition("amend_proposal", "变更拟处罚意见",
               frozenset({"confirmed", "notice_issued", "statement_received", "heard", "amended"}),
               "amended", _OFFICER, "required", guards=(may_amend, no_new_decision),
               effect="amend_proposal", then="submit_legal_review"),
)  # fmt: skip


# --- effects -----------------------------------------------------------------------------------


@dataclass
class Step:
    """One transition being applied: what an effect sees and may write through ``conn``."""

    conn: Any
    case: CaseFacts
    row: Mapping[str, Any]
    request: Request
    now: dt.datetime
    lifecycle: Lifecycle


Effect = Callable[[Step], Awaitable[dict[str, Any]]]
# Re-runs the rules on a corrected detection; the composition root provides it.
Redecide = Callable[[Violation, str, str | None], Awaitable[Violation]]

# the case columns a new decision replaces (a plate correction)
DECIDED_COLUMNS = (
    "violation_id", "detection_id", "plate", "plate_color", "outcome", "fine_cny",
    "measured_kg", "tolerance_kg", "limit_kg", "overload_kg", "tier", "legal_basis",
    "penalty_basis", "violation",
)  # fmt: skip


async def correct_plate(step: Step) -> dict[str, Any]:
    """payload: plate, plate_color. The rules decide again on the corrected facts; the case
    takes the new decision, the old one is kept in ``case_corrections``."""
    plate = str(step.request.payload.get("plate") or "").strip()
    color = step.request.payload.get("plate_color") or None
    if not plate:
        raise TransitionRefused("请填写更正后的车牌号", step.case.case_id)
    redecide = step.lifecycle.redecide
    if redecide is None:
        raise TransitionRefused("本系统未配置规则引擎，不能更正车牌", step.case.case_id)
    old = Violation.model_validate_json(step.row["violation"])
    try:
        new = await redecide(old, plate, color)
    except ValueError as exc:
        raise TransitionRefused(f"车牌号无效：{exc}", step.case.case_id) from exc
    doc = new.model_dump_json()
    values = (new.violation_id, new.detection_id, new.plate, new.plate_color, new.outcome,
              new.fine_cny, new.measured_kg, new.tolerance_kg, new.limit_kg, new.overload_kg,
              new.tier, new.legal_basis, new.penalty_basis, doc)  # fmt: skip
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(DECIDED_COLUMNS))
    await step.conn.execute(f"UPDATE cases SET {sets} WHERE case_id = $1", step.case.case_id,
                            *values)  # fmt: skip
    await step.conn.execute(
        "INSERT INTO case_corrections (case_id, field, old_value, new_value, old_violation,"
        " new_violation, actor, at) VALUES ($1, 'plate', $2, $3, $4, $5, $6, $7)",
        step.case.case_id, old.plate, new.plate, step.row["violation"], doc,
        step.request.actor.name, step.now,
    )  # fmt: skip
    return {
        "old": {"plate": old.plate, "plate_color": old.plate_color, "outcome": old.outcome,
                "fine_cny": old.fine_cny},
        "new": {"plate": new.plate, "plate_color": new.plate_color, "outcome": new.outcome,
                "fine_cny": new.fine_cny, "tier": new.tier},
    }  # fmt: skip


LOOKUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off paper
LOOKUP_LENGTH = 10  # 32^10 ≈ 10^15 codes, against a per-address throttle


def new_lookup_code() -> str:
    return "".join(secrets.choice(LOOKUP_ALPHABET) for _ in range(LOOKUP_LENGTH))


async def document_number(conn: Any, kind: str, prefix: str, year: int) -> str:
    """The next number of a ``kind`` of document in ``year``: 1, 2, … again each year, as in
    湘交执超通〔2027〕1号 (the agency's code, the year, the number)."""
    seq = await conn.fetchval(
        "INSERT INTO document_numbers (kind, year, last) VALUES ($1, $2, 1) ON CONFLICT (kind,"
        " year) DO UPDATE SET last = document_numbers.last + 1 RETURNING last",
        kind, year,
    )  # fmt: skip
    return f"{prefix}〔{year}〕{seq}号"


async def issue_notice(step: Step) -> dict[str, Any]:
    """payload: document (the notice's facts as the console renders them). The notice gets
    its number and the party's lookup code here, under the case lock; its deadlines only when
    it is served (``serve``: they run from the day of service, never from this click). The
    lookup code is never written to the custody log: it opens the party's page."""
    p = step.lifecycle.policy
    doc = dict(step.request.payload.get("document") or {})
    if doc.get("plate") != step.case.plate or doc.get("fine_cny") != step.case.fine_cny:
        raise TransitionRefused("案件事实已变化，请刷新后重新送达", step.case.case_id)
    today = step.now.astimezone(p.tz).date()
    number = await document_number(step.conn, "notice", p.notice_prefix, today.year)
    kind = (doc.get("party") or {}).get("kind")  # the party's kind decides the hearing right
    hearing = p.hearing(step.case.fine_cny, kind)
    doc.update(notice_no=number, issued_on=today.isoformat(), statement_days=p.statement_days,
               hearing_days=p.hearing_request_days if hearing else None,
               contact=p.agency_contact)  # fmt: skip
    # an amended proposal's notice replaces the one in force, which stays in the file
    before = await step.conn.fetchrow(
        "UPDATE notices SET superseded_at = $2 WHERE case_id = $1 AND superseded_at IS NULL"
        " RETURNING seq, notice_no", step.case.case_id, step.now)  # fmt: skip
    if before is not None:  # the party may ask for a hearing on the new proposal
        doc["replaces"] = before["notice_no"]
        for table in ("all_hearing_notices", "all_hearings"):
            await step.conn.execute(
                f"UPDATE {table} SET superseded_at = $2 WHERE case_id = $1"
                " AND superseded_at IS NULL", step.case.case_id, step.now)  # fmt: skip
    seq = before["seq"] + 1 if before is not None else 1
    await step.conn.execute(
        "INSERT INTO notices (case_id, seq, notice_no, lookup_code, plate, issued_at,"
        " issued_by, document) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        step.case.case_id, seq, number, new_lookup_code(), step.case.plate, step.now,
        step.request.actor.name, json.dumps(doc, ensure_ascii=False),
    )  # fmt: skip
    return {"notice_no": number, **({"replaces": before["notice_no"]} if before else {})}


async def store_statement(step: Step) -> dict[str, Any]:
    """payload: body (text), images (list of {uri, sha256, type, size}, already in the blob
    store), address. The custody entry names the text and images by their SHA-256."""
    body = str(step.request.payload.get("body") or "").strip()
    if not body:
        raise TransitionRefused("请填写陈述、申辩的内容", step.case.case_id)
    images = list(step.request.payload.get("images") or [])
    online = PARTY in step.request.actor.roles  # else an officer records one received offline
    sid = await step.conn.fetchval(
        "INSERT INTO statements (case_id, body, images, submitted_at, address, channel,"
        " recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING statement_id",
        step.case.case_id, body, json.dumps(images), step.now,
        step.request.payload.get("address"), "online" if online else "offline",
        None if online else step.request.actor.name,
    )  # fmt: skip
    return {"statement_id": sid, "body_sha256": hashlib.sha256(body.encode()).hexdigest(),
            "images": [i["sha256"] for i in images]}  # fmt: skip


def _payload_day(step: Step, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(step.request.payload.get(key) or ""))
    except ValueError:
        raise TransitionRefused(f"请填写日期（{key}）", step.case.case_id) from None


async def hold_hearing(step: Step) -> dict[str, Any]:
    """payload: held_on, host, minutes (听证笔录); the 听证通知书 was served (cases/hearing.py).
    Art. 64 (2): the party is told at least 7 (working, Art. 85) days before; (4): the host is
    not one who investigated the case."""
    cid, p = step.case.case_id, step.lifecycle.policy
    held = _payload_day(step, "held_on")
    # the day the 听证通知书 was served (cases/hearing.py), never a day typed in
    notified = await step.conn.fetchval(
        "SELECT served_on FROM hearing_notices WHERE case_id = $1", cid
    )
    if notified is None:
        raise TransitionRefused("听证通知书尚未送达当事人，不能举行听证", cid)
    host = str(step.request.payload.get("host") or "").strip()
    minutes = str(step.request.payload.get("minutes") or "").strip()
    if not host or not minutes:
        raise TransitionRefused("请填写听证主持人和听证笔录", cid)
    ahead = p.due(notified, 7)
    if held <= ahead.due:
        raise TransitionRefused(
            f"听证通知书须在举行听证七个工作日前送达：{notified.isoformat()} 送达的，"
            f"最早 {(ahead.due + dt.timedelta(days=1)).isoformat()} 举行听证", cid)  # fmt: skip
    if held > step.now.astimezone(p.tz).date():
        raise TransitionRefused("听证尚未举行", cid)
    if host in await investigators(step.conn, cid):
        raise TransitionRefused("听证主持人不得由本案调查人员担任（行政处罚法第六十四条）", cid)
    await step.conn.execute(
        "INSERT INTO hearings (case_id, notified_on, held_on, host, minutes, recorded_by,"
        " recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        cid, notified, held, host, minutes, step.request.actor.name, step.now,
    )  # fmt: skip
    return {"notified_on": notified.isoformat(), "held_on": held.isoformat(), "host": host,
            "minutes_sha256": hashlib.sha256(minutes.encode()).hexdigest()}  # fmt: skip


async def investigators(conn: Any, case_id: str) -> set[str]:
    """The accounts that confirmed, notified or served the case: never its hearing's host."""
    rows = await conn.fetch(
        "SELECT DISTINCT actor FROM case_transitions WHERE case_id = $1 AND action = ANY($2)",
        case_id, sorted(RUNNING_ACTIONS),
    )  # fmt: skip
    return {r["actor"] for r in rows}


async def record_discussion(step: Step) -> dict[str, Any]:
    """payload: participants (the 负责人 present, at least three names), minutes (讨论记录)."""
    cid = step.case.case_id
    names = [n for n in re.split(r"[,，、;；\s]+", str(step.request.payload.get("participants")
                                                        or "")) if n]  # fmt: skip
    minutes = str(step.request.payload.get("minutes") or "").strip()
    if len(set(names)) < 3 or not minutes:
        raise TransitionRefused("集体讨论须写明至少三名参加的负责人和讨论记录", cid)
    await step.conn.execute(
        "INSERT INTO case_discussions (case_id, participants, minutes, recorded_by, recorded_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        cid, names, minutes, step.request.actor.name, step.now,
    )  # fmt: skip
    return {"participants": names, "minutes_sha256": hashlib.sha256(minutes.encode()).hexdigest()}


async def amend_proposal(step: Step) -> dict[str, Any]:
    """payload: outcome (fine | warning), fine_cny, tier_name (裁量档次), facts (the facts,
    reasons and evidence adopted from the party's statement or the hearing), penalty_basis (a
    road case; default its own). A waterway case's fine is within its article's range
    (events.water.FINE_RANGE), on that article. The case takes the new proposal; what the
    notice in force proposed is kept in ``proposal_amendments``."""
    cid, pay = step.case.case_id, step.request.payload
    outcome = str(pay.get("outcome") or "fine")
    tier, facts = str(pay.get("tier_name") or "").strip(), str(pay.get("facts") or "").strip()
    if outcome not in ("fine", "warning"):
        raise TransitionRefused("拟处罚种类须为罚款或警告", cid)
    try:
        fine = int(str(pay.get("fine_cny") or "").strip()) if outcome == "fine" else None
    except ValueError:
        raise TransitionRefused("请填写罚款数额（元，整数）", cid) from None
    if not tier or not facts:
        raise TransitionRefused("请填写裁量档次和采纳的事实、理由及证据", cid)
    row = await step.conn.fetchrow(
        "SELECT legal_basis, penalty_basis FROM cases WHERE case_id = $1", cid)  # fmt: skip
    legal, basis = row["legal_basis"], str(pay.get("penalty_basis") or "").strip()
    basis = basis or row["penalty_basis"]
    if is_water(step.case):
        least, most, basis = WATER_FINE_RANGE[step.case.violation_code]
        legal = WATER_LEGAL_BASIS[step.case.violation_code]
        if fine is None or not least <= fine <= most:
            raise TransitionRefused(f"罚款数额须在 {least} 元至 {most} 元之间（{basis}）", cid)
    elif fine is not None and fine <= 0:
        raise TransitionRefused("罚款数额须大于零", cid)
    notice_no = await step.conn.fetchval(
        "SELECT notice_no FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    await step.conn.execute(
        "INSERT INTO proposal_amendments (case_id, notice_no, old_outcome, old_fine_cny, outcome,"
        " fine_cny, tier_name, legal_basis, penalty_basis, facts, reason, actor, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        cid, notice_no, step.case.outcome, step.case.fine_cny, outcome, fine, tier, legal, basis,
        facts, step.request.reason or "", step.request.actor.name, step.now,
    )  # fmt: skip
    await step.conn.execute(
        "UPDATE cases SET outcome = $2, fine_cny = $3, legal_basis = $4, penalty_basis = $5"
        " WHERE case_id = $1", cid, outcome, fine, legal, basis)  # fmt: skip
    return {"amends": notice_no, "old": {"outcome": step.case.outcome,
                                         "fine_cny": step.case.fine_cny},
            "new": {"outcome": outcome, "fine_cny": fine, "tier_name": tier,
                    "penalty_basis": basis}, "facts": facts}  # fmt: skip


async def legal_opinion(step: Step) -> dict[str, Any]:
    """法制审核 by a reviewer who holds 法律职业资格: 行政处罚法 Art. 58 para 2 "行政机关中初次从事
    行政处罚决定法制审核的人员，应当通过国家统一法律职业资格考试取得法律职业资格". (A reviewer who
    did the work before 2018 is exempt by that text; the agency records such a reviewer's
    qualification or appointment number in the same field.) The opinion is the reason."""
    cert = await step.conn.fetchval(
        "SELECT legal_cert_no FROM accounts WHERE username = $1 AND active",
        step.request.actor.name,
    )
    if not (cert or "").strip():
        raise TransitionRefused(
            "法制审核人员须取得法律职业资格（行政处罚法第五十八条第二款）：您的账户未登记法律职业资格"
            "证书编号，不能作出法制审核意见，请管理员在账户管理中填写", step.case.case_id)  # fmt: skip
    return {"legal_cert_no": cert}


async def clear_review_reason(step: Step) -> dict[str, Any]:
    await step.conn.execute(
        "UPDATE cases SET review_reason = NULL WHERE case_id = $1", step.case.case_id
    )
    return {"review_reason": step.case.review_reason}


EFFECTS: dict[str, Effect] = {
    "correct_plate": correct_plate,
    "issue_notice": issue_notice,
    "store_statement": store_statement,
    "clear_review_reason": clear_review_reason,
    "amend_proposal": amend_proposal,
    "legal_opinion": legal_opinion,
    "hold_hearing": hold_hearing,
    "record_discussion": record_discussion,
}


# --- the machine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """A transition as written."""

    transition_id: int
    action: str
    from_status: str
    to_status: str
    actor: str
    at: dt.datetime
    custody_seq: int
    detail: dict[str, Any]


def case_facts(row: Mapping[str, Any]) -> CaseFacts:
    doc = json.loads(row["violation"])
    return CaseFacts(
        case_id=row["case_id"], status=row["status"], plate=row["plate"],
        outcome=row["outcome"], fine_cny=row["fine_cny"], violation_code=row["violation_code"],
        legal_review=bool(doc.get("legal_review")), review_reason=row["review_reason"],
        statement_due=row["statement_due"], hearing_due=row.get("hearing_due"),
        notice_served=row.get("served_on"), notified_outcome=row.get("notified_outcome"),
        notified_fine_cny=row.get("notified_fine_cny"),
        unreviewed_statements=row.get("unreviewed_statements") or 0,
    )  # fmt: skip


class Lifecycle:
    """The state machine over the case store. ``transitions``, ``effects``: the table (default
    :data:`TRANSITIONS`, :data:`EFFECTS`); a later tool passes them extended."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        custody: CustodyLog,
        policy: Policy | None = None,
        *,
        transitions: Iterable[Transition] = TRANSITIONS,
        effects: Mapping[str, Effect] = EFFECTS,
        redecide: Redecide | None = None,
        clock: Clock,
    ) -> None:
        self.pool, self.custody, self.policy = pool, custody, policy or Policy()
        self.transitions = tuple(transitions)
        self.effects, self.redecide, self.clock = dict(effects), redecide, clock
        for t in self.transitions:
            unknown = {t.target or "pending_review", *t.sources} - set(STATES)
            if unknown:
                raise ValueError(f"transition {t.action}: unknown states {sorted(unknown)}")
            if t.effect is not None and t.effect not in self.effects:
                raise ValueError(f"transition {t.action}: no effect {t.effect!r}")

    # the pure part: which transition, and may it happen

    def labels(self) -> dict[str, str]:
        return {t.action: t.label for t in self.transitions}

    def offered(self, case: CaseFacts, roles: Iterable[str]) -> list[Transition]:
        """The actions someone with ``roles`` may try on ``case`` in its state (guards are
        checked when they try: the refusal says why)."""
        mine, seen, out = set(roles), set(), []
        for t in self.transitions:
            if case.status in t.sources and t.roles & mine and t.action not in seen:
                seen.add(t.action)
                out.append(t)
        return out

    def plan(self, ctx: Context, request: Request) -> Transition:
        """The transition ``request`` makes of ``ctx.case``; raises when it may not happen."""
        cid = ctx.case.case_id
        named = [t for t in self.transitions if t.action == request.action]
        if not named:
            raise TransitionRefused(f"未知的操作 {request.action!r}", cid)
        if not any(t.roles & ctx.actor.roles for t in named):
            raise RoleRefused(f"您的岗位不能执行“{named[0].label}”", cid)
        here = [t for t in named if ctx.case.status in t.sources and t.roles & ctx.actor.roles]
        if not here:
            raise TransitionRefused(
                f"案件当前状态为“{STATES[ctx.case.status]}”，不能执行“{named[0].label}”", cid
            )
        refusals = []
        for t in here:
            why = _reason_problem(t, request) or next(
                (msg for g in t.guards if (msg := g(ctx)) is not None), None
            )
            if why is None:
                return t
            refusals.append(why)
        raise TransitionRefused(refusals[0], cid)

    # the transactional part

    async def apply(self, case_id: str, request: Request) -> list[Applied]:
        """Apply ``request`` (and its follow-up) to the case; returns what was written."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await self._lock(conn, case_id)
                done = [await self._step(conn, row, request)]
                follow = next(t.then for t in self.transitions if t.action == request.action)
                if follow is not None:
                    row = await self._lock(conn, case_id)
                    # a follow-up that does not apply to this case (not major) is not tried
                    then = replace(request, action=follow, reason=None, reason_code=None,
                                   payload={})  # fmt: skip
                    if self._allowed(await self._context(conn, row, then.actor), then):
                        done.append(await self._step(conn, row, then))
                return done
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"case {case_id}: {request.action} failed: {exc}") from exc

    async def record(self, case_id: str, event: str, actor: str, detail: str = "") -> Head:
        """A custody entry that changes nothing (a view, an export), under the case lock."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._lock(conn, case_id)
                return await self._custody(conn, case_id, event, actor, self.clock(), detail)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"case {case_id}: recording {event} failed: {exc}") from exc

    async def _lock(self, conn: Any, case_id: str) -> Any:
        row = await conn.fetchrow(
            "SELECT c.case_id, c.status, c.plate, c.outcome, c.fine_cny, c.violation_code,"
            " c.review_reason, c.violation, n.statement_due, n.hearing_due, n.served_on,"
            " n.document->>'outcome' AS notified_outcome,"
            " (n.document->>'fine_cny')::integer AS notified_fine_cny,"
            " (SELECT count(*) FROM statements s WHERE s.case_id = c.case_id"
            "  AND s.reviewed_at IS NULL) AS unreviewed_statements"
            " FROM cases c"
            " LEFT JOIN violation_notices n USING (case_id) WHERE c.case_id = $1"
            " FOR UPDATE OF c",
            case_id,
        )
        if row is None:
            raise CaseNotFound("没有这个案件", case_id)
        return row

    async def _context(self, conn: Any, row: Any, actor: Actor) -> Context:
        case = case_facts(row)
        history = [Past(r["action"], r["actor"]) for r in await conn.fetch(
            "SELECT action, actor FROM case_transitions WHERE case_id = $1"
            " ORDER BY transition_id", case.case_id)]  # fmt: skip
        return Context(case, actor, history, self.clock(), self.policy)

    def _allowed(self, ctx: Context, request: Request) -> bool:
        try:
            self.plan(ctx, request)
        except TransitionRefused:
            return False
        return True

    async def _step(self, conn: Any, row: Any, request: Request) -> Applied:
        ctx = await self._context(conn, row, request.actor)
        case, now = ctx.case, ctx.now
        t = self.plan(ctx, request)
        target = t.target or case.status
        detail: dict[str, Any] = {"action": t.action, "from": case.status, "to": target}
        if request.reason_code:
            detail["reason_code"] = request.reason_code
        if request.reason:
            detail["reason"] = request.reason
        if t.effect is not None:
            step = Step(conn, case, row, request, now, self)
            detail.update(await self.effects[t.effect](step))
        await conn.execute("UPDATE cases SET status = $2 WHERE case_id = $1", case.case_id,
                           target)  # fmt: skip
        text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
        head = await self._custody(conn, case.case_id, "transition", request.actor.name, now, text)
        role = next(r for r in sorted(t.roles & request.actor.roles))
        tid = await conn.fetchval(
            "INSERT INTO case_transitions (case_id, action, from_status, to_status, actor,"
            " actor_role, reason_code, reason, detail, at, custody_seq, custody_hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING transition_id",
            case.case_id, t.action, case.status, target, request.actor.name, role,
            request.reason_code, request.reason, text, now, head.length, head.hash,
        )  # fmt: skip
        return Applied(tid, t.action, case.status, target, request.actor.name, now,
                       head.length, detail)  # fmt: skip

    async def _custody(
        self, conn: Any, case_id: str, event: str, actor: str, now: dt.datetime, detail: str
    ) -> Head:
        """Append under the held case lock, checked against the recorded head, and record the
        new head. Before the store has a head, the log holds only its creation entry."""
        r = await conn.fetchrow(
            "SELECT length, head_hash FROM custody_heads WHERE case_id = $1", case_id
        )
        expect = Head(r["length"], r["head_hash"]) if r else Head(1, None)
        head = await asyncio.to_thread(
            self.custody.append, case_id, event, actor, now, detail, expect
        )
        await conn.execute(
            "INSERT INTO custody_heads (case_id, length, head_hash, updated_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (case_id) DO UPDATE"
            " SET length = EXCLUDED.length, head_hash = EXCLUDED.head_hash,"
            " updated_at = EXCLUDED.updated_at",
            case_id, head.length, head.hash, now,
        )  # fmt: skip
        return head


def _reason_problem(t: Transition, request: Request) -> str | None:
    text = (request.reason or "").strip()
    if t.reason == "required" and not text:
        return f"“{t.label}”须填写理由"
    if t.reason == "coded":
        if request.reason_code not in t.reason_codes:
            return f"“{t.label}”须选择理由"
        if request.reason_code == "other" and not text:
            return "选择“其他”时须说明理由"
    if len(text) > 2000:
        return "理由过长（最多 2000 字）"
    return None


async def custody_heads(pool: asyncpg.Pool, case_ids: Sequence[str]) -> dict[str, Head]:
    """The recorded head of each package's custody log (cases without one are absent)."""
    try:
        rows = await pool.fetch(
            "SELECT case_id, length, head_hash FROM custody_heads WHERE case_id = ANY($1)",
            list(case_ids),
        )
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"reading custody heads failed: {exc}") from exc
    return {r["case_id"]: Head(r["length"], r["head_hash"]) for r in rows}

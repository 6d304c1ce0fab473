"""The 听证通知书 (must-have 6): once the party has asked for a hearing, an officer makes the
notice (time, place, the host) and records its service; the hearing is held no sooner than 7
working days after that service.

行政处罚法 (2021) Art. 64 (2): "行政机关应当在举行听证的七日前，通知当事人及有关人员听证的时间、
地点"; Art. 85: "本法中'二日''三日''五日''七日'的规定是指工作日". Art. 64 (4): the host is not one
who investigated the case, and the party may ask for the host's 回避; (5): the party may attend
alone or with one or two 代理人; (6): one who does not come without good reason gives up the
hearing.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sinks.accounts import OFFICER
from sinks.lifecycle import Step, Transition, TransitionRefused, document_number, investigators

HEARING_AHEAD_DAYS = 7  # working days between the notice's service and the hearing (Art. 64 (2))

HEARING_NOTICE: tuple[Transition, ...] = (
    Transition("schedule_hearing", "制作听证通知书", frozenset({"hearing_requested"}), None,
               frozenset({OFFICER}), effect="schedule_hearing"),
    Transition("serve_hearing_notice", "登记送达（听证通知书）", frozenset({"hearing_requested"}),
               None, frozenset({OFFICER}), "optional", effect="serve_hearing_notice"),
)  # fmt: skip


def too_soon(step: Step, served_on: dt.date, held_on: dt.date) -> str | None:
    """Why a hearing on ``held_on`` is too soon for a notice served on ``served_on`` (Chinese),
    or None: it is held after the 7th working day from the day after service."""
    ahead = step.lifecycle.policy.due(served_on, HEARING_AHEAD_DAYS)
    if held_on > ahead.due:
        return None
    return (f"听证通知书须在举行听证七个工作日前送达（行政处罚法第六十四条第二项）："
            f"{served_on.isoformat()} 送达的，最早 {(ahead.due + dt.timedelta(days=1)).isoformat()}"
            " 举行听证")  # fmt: skip


def _held_at(step: Step) -> dt.datetime:
    payload = step.request.payload
    try:
        day = dt.date.fromisoformat(str(payload.get("held_on") or ""))
        time = dt.time.fromisoformat(str(payload.get("held_time") or "09:00"))
    except ValueError:
        raise TransitionRefused("请填写听证日期和时间", step.case.case_id) from None
    return dt.datetime.combine(day, time, step.lifecycle.policy.tz)


async def schedule_hearing(step: Step, today: dt.date) -> dict[str, Any]:
    """payload: held_on, held_time (HH:MM), place, host. Refused when the hearing could not be
    7 working days after a service made today, or the host investigated the case."""
    cid, p = step.case.case_id, step.lifecycle.policy
    held_at = _held_at(step)
    place = str(step.request.payload.get("place") or "").strip()
    host = str(step.request.payload.get("host") or "").strip()
    if not place or not host:
        raise TransitionRefused("请填写听证地点和听证主持人", cid)
    if host in await investigators(step.conn, cid):
        raise TransitionRefused("听证主持人不得由本案调查人员担任（行政处罚法第六十四条）", cid)
    if (why := too_soon(step, today, held_at.date())) is not None:
        raise TransitionRefused(why, cid)
    old = await step.conn.fetchrow(
        "SELECT notice_no, served_on FROM hearing_notices WHERE case_id = $1", cid
    )
    if old is not None and old["served_on"] is not None:
        raise TransitionRefused(f"听证通知书已于 {old['served_on']} 送达", cid)
    notice = await step.conn.fetchval(
        "SELECT document FROM violation_notices WHERE case_id = $1", cid
    )
    facts = json.loads(notice) if notice else {}
    number = old["notice_no"] if old else await document_number(
        step.conn, "hearing_notice", f"{p.notice_prefix}听", today.year)  # fmt: skip
    doc = {key: facts.get(key) for key in ("agency", "party", "plate", "plate_color",
                                           "violation_name", "officers", "contact")}  # fmt: skip
    doc.update(
        notice_no=number,
        violation_notice_no=facts.get("notice_no"),
        issued_on=today.isoformat(),
        held_at=held_at.isoformat(),
        place=place,
        host=host,
    )
    await step.conn.execute(
        "INSERT INTO all_hearing_notices (case_id, notice_no, held_at, place, host, document,"
        " issued_by, issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (case_id) WHERE superseded_at IS NULL DO UPDATE SET held_at = EXCLUDED.held_at, place = EXCLUDED.place, host ="
        " EXCLUDED.host, document = EXCLUDED.document, issued_by = EXCLUDED.issued_by,"
        " issued_at = EXCLUDED.issued_at",
        cid, number, held_at, place, host, json.dumps(doc, ensure_ascii=False),
        step.request.actor.name, step.now,
    )  # fmt: skip
    return {"document_no": number, "held_at": held_at.isoformat(), "place": place, "host": host}

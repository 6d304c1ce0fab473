"""从旧兼从轻 at decision time (行政处罚法 Art. 37; review A6): "实施行政处罚，适用违法行为发生时
的法律、法规、规章的规定。但是，作出行政处罚决定时，法律、法规、规章已被修改或者废止，且新的规定
处罚较轻或者不认为是违法的，适用新的规定。"

The rules decide the pass again under the baseline in force on the decision day (``Rejudge``,
given by the composition root); :func:`compare` says which applies, with a line for the trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from events import Violation

# the pass decided again under the baseline in force on the given day (None: no baseline then,
# or the pass is no violation of its code under it)
Rejudge = Callable[[Violation, dt.date], Awaitable[Violation | None]]

# how heavy an outcome is; a fine is weighed by its amount; "review" is not weighed
_RANK = {"none": 0, "no_penalty": 0, "warning": 1, "fine": 2}


@dataclass(frozen=True)
class Outcome:
    outcome: str
    fine_cny: int | None
    version: str  # the baseline's id and version, for the trace


@dataclass(frozen=True)
class Comparison:
    applies: str  # "old" | "new" | "review" (the new outcome is uncertain: a person looks)
    trace: str


def _heavy(o: Outcome) -> tuple[int, int]:
    return _RANK[o.outcome], o.fine_cny or 0


def compare(old: Outcome, new: Outcome | None, day: dt.date) -> Comparison:
    """``old``: under the baseline in force on the pass date; ``new``: the one in force on
    ``day`` (the decision's). The new applies only when it is lighter (or the act is no longer
    a violation: ``new`` None)."""
    said = f"{old.version}: {old.outcome} {old.fine_cny or 0} 元"
    if new is None:
        return Comparison(
            "new", f"第三十七条：{day} 施行的规定不再认为是违法（原 {said}），适用新的规定"
        )
    if new.outcome == "review":
        return Comparison(
            "review", f"第三十七条：{day} 施行的 {new.version} 须人工复核（原 {said}）"
        )
    now = f"{new.version}: {new.outcome} {new.fine_cny or 0} 元"
    if new.version == old.version or _heavy(new) >= _heavy(old):
        return Comparison(
            "old", f"第三十七条：行为时 {said}；决定时（{day}）{now}；适用行为时的规定"
        )
    return Comparison(
        "new", f"第三十七条：行为时 {said}；决定时（{day}）{now}；新的规定较轻，适用新的规定"
    )


def outcome_of(v: Violation) -> Outcome:
    return Outcome(v.outcome, v.fine_cny, f"{v.rule} v{v.rule_version}")

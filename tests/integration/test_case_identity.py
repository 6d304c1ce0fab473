"""Issue #11 item 4: a case is the pass and the violation code. A re-decision under another
detector or baseline version updates the pending case, with a trail of both decisions, and
only marks a confirmed one for another look — never a second case, never a second fine."""

from __future__ import annotations

from events import Violation
from offsite import services
from offsite.config import Settings
from offsite.pipeline import prepare
from tests.unit.test_no_wrong_fine import decide, one, passing


def redecided(v: Violation, version: str, fine: int) -> Violation:
    det = v.detection.model_copy(update={"detector_version": version,
                                         "detection_id": f"det-{version}"})  # fmt: skip
    return v.model_copy(update={"detection": det, "detection_id": det.detection_id,
                                "violation_id": f"vio-{version}", "fine_cny": fine})  # fmt: skip


async def test_a_new_version_updates_the_pending_case_and_only_flags_a_confirmed_one(
    settings: Settings,
) -> None:
    store = await prepare(settings, services.endpoints(settings))
    try:
        first = one(await decide(passing("p", 56_000)))
        assert (first.outcome, first.fine_cny) == ("fine", 2_500)
        for batch in ([first], [redecided(first, "2.0.0", 2_000)]):
            await (await store.begin_batch(batch)).commit()
        cases = await store.cases()
        assert [(c["record_id"], c["fine_cny"]) for c in cases] == [("p", 2_000)]
        trail = await store.pool.fetch(
            "SELECT violation_id, fine_cny, applied FROM case_decisions ORDER BY decided_at, "
            "violation_id"
        )
        assert [tuple(r) for r in trail] == [(first.violation_id, 2_500, True),
                                             ("vio-2.0.0", 2_000, True)]  # fmt: skip
        # a replay of a decision the case has: nothing changes
        await (await store.begin_batch([redecided(first, "2.0.0", 2_000)])).commit()
        assert await store.cases() == cases
        # confirmed by an officer: a later decision does not change it, it asks for a look
        await store.pool.execute("UPDATE cases SET status = 'confirmed'")
        await (await store.begin_batch([redecided(first, "3.0.0", 1_500)])).commit()
        (case,) = await store.cases()
        assert (case["fine_cny"], case["status"]) == (2_000, "confirmed")
        reason = await store.pool.fetchval("SELECT review_reason FROM cases")
        assert "decided again after an officer confirmed it" in reason and "1500 CNY" in reason
        applied = await store.pool.fetch("SELECT violation_id, applied FROM case_decisions")
        assert dict((r[0], r[1]) for r in applied)["vio-3.0.0"] is False
    finally:
        await store.close()

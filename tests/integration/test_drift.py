"""The drift watch on the real case store (issue #29 must-have 5): its state survives a restart
of the detection stage, and `offsite devices drift` prints each device lane's state."""

from __future__ import annotations

import pytest

from detectors import DetectionStage
from offsite import services
from offsite.cli import _devices
from offsite.config import Settings
from sinks import CaseStore
from tests.unit.test_drift import REGISTRY, traffic
from tests.unit.test_stages import incoming


async def test_the_drift_watch_survives_a_restart_and_is_printed(
    plain_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await CaseStore.connect(services.endpoints(plain_settings).database_url)
    try:
        await store.migrate()
        history = traffic(24 * 12, drift_from=24 * 10)
        first = DetectionStage(REGISTRY, drift_store=store)
        await first.start()
        await first.process(incoming(history[: len(history) // 2]))  # before the drift
        await first.idle()
        again = DetectionStage(REGISTRY, drift_store=store)  # a restart
        await again.start()
        assert again.drift.states == first.drift.states and again.drift.states
        await again.process(incoming(history[len(history) // 2 :]))
        await again.idle()
        ((key, state),) = again.drift.states.items()
        assert key == ("WIM-G312-1035", 1) and state.alarm_at is not None
    finally:
        await store.close()
    assert await _devices(plain_settings, drift=True) == 0
    out = capsys.readouterr().out
    assert "WIM-G312-1035" in out and "ALARM +" in out and "not enforced" in out
    # both statistics: the steering axle's, which raised this alarm, and the static reweighs'
    assert "(steering axle)" in out and "reweighs" in out and "WIM/static" in out

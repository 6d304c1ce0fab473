"""Shared set-up for the benchmarks: embedded services under var/bench, fresh names per run."""

from __future__ import annotations

import asyncio
import atexit
from pathlib import Path

from offsite import services
from offsite.config import KafkaSettings, Settings
from offsite.testing import isolated_settings

ROOT = Path(__file__).resolve().parents[1]


async def bench_settings(bootstrap: str | None = None) -> Settings:
    """Embedded services (or the broker at ``bootstrap``), a new database and topic prefix."""
    base = Settings(
        var_dir=ROOT / "var" / "bench",
        registry=ROOT / "configs" / "sites.yaml",
        vehicles=ROOT / "configs" / "vehicles.yaml",
        permits=ROOT / "configs" / "permits.yaml",
        baselines={"national": ROOT / "configs" / "baselines" / "national.yaml"},
        kafka=KafkaSettings(bootstrap=bootstrap),
    )
    if not services.running(base):  # stop at exit what this benchmark started
        atexit.register(_stop, base)
    await asyncio.to_thread(services.up, base)
    return await isolated_settings(base, "b")


def _stop(settings: Settings) -> None:
    stopped = services.down(settings)
    if stopped:
        print(f"(stopped the {' and '.join(stopped)} this benchmark started under var/bench)")

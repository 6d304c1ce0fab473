"""Real services for the integration and browser suites: the embedded broker and PostgreSQL by
default, or the Apache Kafka broker named by OFFSITE_TEST_KAFKA (make test-kafka). Each test gets
its own topics, consumer groups and database. Here, above both folders, so that one run starts the
services once."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence import generate_key
from offsite import services
from offsite.config import EvidenceSettings, KafkaSettings, Settings
from offsite.testing import isolated_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def service_settings() -> Iterator[Settings]:
    # not under pytest's own temporary folders: pytest prunes old ones while another run may
    # still have its PostgreSQL there
    var = Path(tempfile.mkdtemp(prefix="offsite-it-"))
    var.chmod(0o755)
    external = os.environ.get("OFFSITE_TEST_KAFKA")
    settings = Settings(
        var_dir=var,
        evidence=EvidenceSettings(key=var / "keys" / "evidence.pem", dir=var / "evidence"),
        registry=ROOT / "configs" / "sites.yaml",
        vehicles=ROOT / "configs" / "vehicles.yaml",
        permits=ROOT / "configs" / "permits.yaml",
        baselines={"national": ROOT / "configs" / "baselines" / "national.yaml"},
        kafka=KafkaSettings(bootstrap=external),
    )
    generate_key(settings.evidence.key)
    services.up(settings)
    yield settings
    services.down(settings)
    shutil.rmtree(var, ignore_errors=True)


@pytest.fixture
async def settings(service_settings: Settings) -> Settings:
    """Settings for one test: fresh topic prefix, consumer groups and database."""
    return await isolated_settings(service_settings)


@pytest.fixture
async def plain_settings(service_settings: Settings) -> Settings:
    """As ``settings``, without the OCR second read (for traffic simulated without images)."""
    return await isolated_settings(service_settings, verify_plates=False)

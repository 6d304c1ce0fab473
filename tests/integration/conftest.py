"""Real services for the integration suite: the embedded broker and PostgreSQL by default, or the
Apache Kafka broker named by OFFSITE_TEST_KAFKA (make test-kafka). Each test gets its own topics,
consumer groups and database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from offsite import services
from offsite.config import DatabaseSettings, KafkaSettings, PipelineSettings, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def service_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var = tmp_path_factory.mktemp("var")
    external = os.environ.get("OFFSITE_TEST_KAFKA")
    settings = Settings(
        var_dir=var,
        registry=ROOT / "configs" / "sites.yaml",
        kafka=KafkaSettings(bootstrap=external),
    )
    services.up(settings)
    yield settings
    services.down(settings)


@pytest.fixture
async def settings(service_settings: Settings) -> Settings:
    """Settings for one test: fresh topic prefix, consumer groups and database."""
    ep = services.endpoints(service_settings)
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(ep.database_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = ep.database_url.replace("/offsite?", f"/{name}?")
    return Settings(
        var_dir=service_settings.var_dir,
        registry=service_settings.registry,
        kafka=KafkaSettings(bootstrap=ep.bootstrap, partitions=3),
        database=DatabaseSettings(url=url),  # type: ignore[arg-type]
        pipeline=PipelineSettings(
            topic_prefix=f"{name}.", group_prefix=name, idle_flush_s=0.5, metrics_port=0
        ),
    )

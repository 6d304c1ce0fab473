"""Real services for the integration and browser suites: the embedded broker and PostgreSQL by
default, or the Apache Kafka broker named by OFFSITE_TEST_KAFKA (make test-kafka). Each test gets
its own topics, consumer groups and database. Here, above both folders, so that one run starts the
services once. ``world``: cases in every state with the console's staff accounts, for the
console's integration and browser tests (a module may define its own)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from offsite import services
from offsite.config import Settings
from offsite.faults import scratch
from offsite.testing import isolated_settings
from sinks.accounts import Accounts
from tests.integration.test_console import PASSWORD, USERS
from tests.integration.test_lifecycle import World, make_world, qualify

# Every property test without a per-example deadline: hypothesis's default (200 ms) fails an
# example that is merely slow, and under load (scripts/starve.sh, 8 runs on 2 cores) a numpy
# batch or a first import takes longer than that; the tests assert outcomes, never speed.
hypothesis_settings.register_profile("offsite", deadline=None)
hypothesis_settings.load_profile("offsite")


@pytest.fixture(scope="session")
def service_settings() -> Iterator[Settings]:
    # not under pytest's own temporary folders: pytest prunes old ones while another run may
    # still have its PostgreSQL there
    settings = scratch(os.environ.get("OFFSITE_TEST_KAFKA"), "it")
    yield settings
    services.down(settings)
    shutil.rmtree(settings.var_dir, ignore_errors=True)


@pytest.fixture
async def settings(service_settings: Settings) -> Settings:
    """Settings for one test: fresh topic prefix, consumer groups and database."""
    return await isolated_settings(service_settings)


@pytest.fixture
async def plain_settings(service_settings: Settings) -> Settings:
    """As ``settings``, without the OCR second read (for traffic simulated without images)."""
    return await isolated_settings(service_settings, verify_plates=False)


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    w = await make_world(plain_settings)
    accounts = Accounts(w.store.pool)
    for name, roles in USERS.items():
        await accounts.create(name, roles, PASSWORD, display_name=f"{name}警官")
    await qualify(w.store.pool, "zhao")  # 法律职业资格 (Art. 58)
    yield w
    await w.store.close()

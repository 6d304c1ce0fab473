"""The integration suite's fixtures (`settings`, `plain_settings`) are in tests/conftest.py,
shared with the browser tests; ``desk``: the dispatch tests' world with leads and squads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from offsite.config import Settings

from .test_dispatch import Desk, make_desk


@pytest.fixture
async def desk(plain_settings: Settings) -> AsyncIterator[Desk]:
    d = await make_desk(plain_settings)
    yield d
    await d.world.store.close()

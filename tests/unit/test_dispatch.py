"""Issue #30 items 1 and 4: configs/squads.yaml is validated at start-up (file, line, field), and a
deadline in working hours counts only the agency's working day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from events import ConfigError
from offsite.config import load_squads, load_waterways
from sinks.dispatch import WorkingHours, add_working_hours
from tests.unit.test_stages import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
TZ = dt.timezone(dt.timedelta(hours=8))
WH = WorkingHours(holidays=frozenset({dt.date(2027, 1, 1)}))


def test_the_shipped_squads_file_loads_against_the_registries() -> None:
    squads = load_squads(ROOT / "configs" / "squads.yaml", REGISTRY,
                         load_waterways(ROOT / "configs" / "waterways.yaml"))  # fmt: skip
    assert squads.squad_of_place("G312-K1035-E").id == "ZD-NORTH"  # type: ignore[union-attr]
    assert squads.squad_of_place("CP-XJ-01").id == "ZD-RIVER"  # type: ignore[union-attr]
    assert [s.id for s in squads.squads_of("sun")] == ["ZD-NORTH"]


@pytest.mark.parametrize(("text", "line", "field", "message"), [
    ("squads:\n  - id: A\n    name: 一中队\n    levl: squad\n", 4, "squads.0.levl", "Extra inputs"),
    ("squads:\n  - id: A\n    name: 一中队\n    sites: [NOPE]\n", 4, "squads.0.sites.0", "in no registry"),
    ("squads:\n  - id: A\n    name: 一中队\n    parent: B\n", 4, "squads.0.parent", "no brigade"),
    ("squads:\n  - id: A\n    name: a\n    sites: [S207-K45-N]\n  - id: B\n    name: b\n"
     "    sites: [S207-K45-N]\n", 7, "squads.1.sites.0", "already A's"),
    ("squads: []\nauto_dispatch:\n  clone: {hours: 4}\n", 3, "auto_dispatch.clone", "no lead kind"),
])  # fmt: skip
def test_a_bad_squads_file_names_its_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "squads.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_squads(path, REGISTRY)
    assert (err.value.line, err.value.field) == (line, field) and message in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("start", "hours", "due"), [
    ((2027, 3, 10, 9, 0), 2, (2027, 3, 10, 11, 0)),  # a Wednesday, inside the day
    ((2027, 3, 12, 16, 30), 2, (2027, 3, 15, 9, 30)),  # Friday 16:30 → Monday 09:30
    ((2027, 3, 13, 10, 0), 1, (2027, 3, 15, 9, 30)),  # given on a Saturday: from Monday's opening
    ((2027, 3, 10, 20, 0), 9, (2027, 3, 11, 17, 30)),  # in the evening: the whole next day
    ((2026, 12, 31, 17, 0), 1, (2027, 1, 4, 9, 0)),  # New Year's Day and the weekend skipped
])  # fmt: skip
def test_working_hours_count_only_the_working_day(
    start: tuple[int, ...], hours: float, due: tuple[int, ...]
) -> None:
    assert add_working_hours(dt.datetime(*start, tzinfo=TZ), hours, WH, TZ) == dt.datetime(
        *due, tzinfo=TZ
    )

"""The waterway registry: configs/waterways.yaml loads, and every problem names file, line, field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import shapely

from events import ConfigError
from offsite.config import load_waterways

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "waterways.yaml"
TEXT = CONFIG.read_text(encoding="utf-8")


def test_the_shipped_registry_loads() -> None:
    reg = load_waterways(CONFIG)
    assert {r.id for r in reg.receivers} == {"RX-XJ-01", "RX-XJ-02"}
    assert all(r.expected_per_min > 0 for r in reg.receivers)
    assert reg.by_mmsi[413801001].name == "湘长沙货1001"
    dredgers = {v.name: v.may_dredge_on(dt.date(2026, 11, 22)) for v in reg.vessels
                if v.kind == "dredger"}  # fmt: skip
    assert dredgers == {"湘湘潭采砂008": True, "湘长沙采砂011": False}
    for cp in reg.checkpoints:
        assert cp.camera_id and cp.view and cp.line[0] != cp.line[1]
    cs = reg.controlled_sections[0]
    assert cs.open_up and cs.open_down
    zone = shapely.Polygon(reg.no_dredging_zones[0].polygon)
    assert zone.is_valid and zone.area > 0
    assert reg.no_dredging_zones[0].night.minutes() == (19 * 60, 6 * 60)


def broken(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """The shipped file with ``old`` replaced once by ``new``; the 1-based line of the change."""
    assert TEXT.count(old) >= 1
    text = TEXT.replace(old, new, 1)
    path = tmp_path / "waterways.yaml"
    path.write_text(text, encoding="utf-8")
    return path, TEXT[: TEXT.index(old)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("    receiver_ids: [RX-XJ-02]\n", "    receiver_ids: [RX-XJ-09]\n",
         "checkpoints.1.receiver_ids.0", "unknown receiver 'RX-XJ-09'"),
        ("    mmsi: 413802002\n", "    mmsi: 413801001\n", "vessels.1.mmsi",
         "belongs to another vessel"),
        ('      - {start: "12:00", end: "13:30"}\n', '      - {start: "12:60", end: "13:30"}\n',
         "controlled_sections.0.open_up.1.start", "is not HH:MM"),
        ("    ais_name: XIANGYUEYANGHUO2002\n", "    ais_name: xiangyueyang\n",
         "vessels.1.ais_name", "should match pattern"),
        ("    load_line_draught_m: 2.8\n", "    load_line_draught_m: 0\n",
         "vessels.1.load_line_draught_m", "greater than 0"),
        ("[[112.9500, 28.2800], [112.9680, 28.2800], [112.9680, 28.2950], [112.9500, 28.2950]]",
         "[[112.9500, 28.2800], [112.9680, 28.2950], [112.9680, 28.2800], [112.9500, 28.2950]]",
         "no_dredging_zones.0.polygon", "not a simple polygon"),
        ("        valid_until: 2026-12-31\n", "        valid_until: 2025-12-31\n",
         "vessels.2.licences.0.valid_until", "before valid_from"),
        ("  - id: CP-XJ-02\n", "  - id: CP-XJ-01\n", "checkpoints.1.id", "used twice"),
        # 行政处罚法 Art. 41: enforcement starts after the 公示 period, not inside it
        ("enforced_from: 2026-01-04", "enforced_from: 2026-01-03",
         "receivers.0.publicity.enforced_from", "not after the 公示 period"),
    ],
)  # fmt: skip
def test_problems_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    path, line = broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as exc:
        load_waterways(path)
    err = exc.value
    assert (err.file, err.field) == (str(path), field)
    assert message in err.message
    assert err.line == line, str(err)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("receivers: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_waterways(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_waterways(tmp_path / "absent.yaml")

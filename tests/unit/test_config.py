"""A bad configuration file stops start-up with its file, line and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from events import ConfigError
from offsite.config import load_baselines, load_registry, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_registry_loads() -> None:
    reg = load_registry(ROOT / "configs" / "sites.yaml")
    site = reg.site("G107-K1520-S")
    assert site is not None and site.not_admissible_on(dt.date(2026, 11, 22)) == []
    assert site.not_admissible_on(dt.date(2025, 12, 1))  # before its review and announcement
    assert site.publicity.enforced_from is not None  # the demo's points are in enforcement
    assert site.not_admissible_on(site.publicity.enforced_from) == []
    assert site.not_admissible_on(site.publicity.enforced_from - dt.timedelta(days=1))
    device = reg.device("WIM-G107-1520")
    assert device is not None and device.accuracy_class == 5 and device.certificate is not None


def test_wrong_type_names_file_line_and_field(tmp_path: Path) -> None:
    text = (ROOT / "configs" / "sites.yaml").read_text(encoding="utf-8")
    bad = text.replace("    lanes: 1\n", "    lanes: one\n")
    path = tmp_path / "sites.yaml"
    path.write_text(bad, encoding="utf-8")
    line = bad.splitlines().index("    lanes: one") + 1
    with pytest.raises(ConfigError) as exc:
        load_registry(path)
    assert (exc.value.file, exc.value.line, exc.value.field) == (str(path), line, "sites.2.lanes")
    assert str(exc.value).startswith(f"{path}:{line}: sites.2.lanes:")


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [  # the third site (S207-K45-N): enforcement inside its 公示, no 法制审核, a short 公示
        ("enforced_from: 2026-01-04", "enforced_from: 2026-01-03", "enforced_from", "公示"),
        ("legal_review_on: 2025-12-10, ", "", "legal_review_on", "needed"),
        ("publicity_until: 2026-01-03", "publicity_until: 2025-12-30", "publicity_until", "15"),
    ],
)
def test_publicity_dates_out_of_order_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, says: str
) -> None:
    text = (ROOT / "configs" / "sites.yaml").read_text(encoding="utf-8")
    parts = text.split(old)
    bad = old.join(parts[:3]) + new + old.join(parts[3:])
    path = tmp_path / "sites.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_registry(path)
    assert exc.value.field == f"sites.2.publicity.{field}" and says in exc.value.message
    site = bad.splitlines().index("  - id: S207-K45-N") + 1
    assert exc.value.line is not None and site < exc.value.line < site + 12


def test_a_device_s_own_publicity_is_checked_like_a_point_s(tmp_path: Path) -> None:
    """A device may carry its own 公示 dates (issue #26 must-have 3); start-up checks them the
    same way and names the device's line: here 启用 inside its own 公示 period."""
    text = (ROOT / "configs" / "sites.yaml").read_text(encoding="utf-8")
    own = ("    publicity: {legal_review_on: 2026-02-01, technical_review_on: 2026-02-01, "
           "notice_on: 2026-02-10, publicity_until: 2026-02-24, signed_on: 2026-02-10, "
           "enforced_from: 2026-02-20}\n")  # fmt: skip
    bad = text.replace("  - id: WIM-S207-45\n", "  - id: WIM-S207-45\n" + own)
    path = tmp_path / "sites.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_registry(path)
    shipped = load_registry(ROOT / "configs" / "sites.yaml").devices
    index = next(i for i, d in enumerate(shipped) if d.id == "WIM-S207-45")
    assert exc.value.field == f"devices.{index}.publicity.enforced_from"
    assert exc.value.line == bad.splitlines().index(own.rstrip("\n")) + 1
    path.write_text(bad.replace("enforced_from: 2026-02-20", "enforced_from: 2026-02-25"),
                    encoding="utf-8")  # fmt: skip
    device = load_registry(path).devices[index]
    assert device.publicity is not None and device.publicity.enforced_from == dt.date(2026, 2, 25)


def test_unknown_device_reference_and_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text("sites: []\ndevices:\n  - {id: W, type: wim}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_registry(path)
    assert exc.value.line == 3 and exc.value.field == "devices.0"
    assert "accuracy_class" in exc.value.message
    path.write_text("sites: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_registry(path)
    assert "not valid YAML" in exc.value.message and exc.value.line == 2


def test_settings_file_errors_and_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "offsite.yaml"
    path.write_text("pipeline:\n  match_window_s: 1.0\n  batch_maxx: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert (exc.value.line, exc.value.field) == (3, "pipeline.batch_maxx")
    path.write_text("kafka:\n  bootstrap: from-file:9092\n", encoding="utf-8")
    monkeypatch.setenv("OFFSITE_KAFKA__BOOTSTRAP", "from-env:9092")
    assert load_settings(path).kafka.bootstrap == "from-env:9092"


def test_an_example_baseline_cannot_decide_real_cases() -> None:
    example = ROOT / "configs" / "baselines" / "example-round-up.yaml"
    with pytest.raises(ConfigError) as err:
        load_baselines({"example-a": example})
    assert err.value.field == "status" and err.value.file.endswith("example-round-up.yaml")
    assert err.value.line == 9  # status: example
    national = load_baselines({"national": ROOT / "configs" / "baselines" / "national.yaml"})
    assert [b.status for b, _ in national["national"]] == ["law"]


def test_min_insync_replicas_above_the_replication_factor_stops_start_up(tmp_path: Path) -> None:
    # on such topics no write with acks=all could ever be acknowledged
    path = tmp_path / "offsite.yaml"
    path.write_text("kafka:\n  replication_factor: 1\n  min_insync_replicas: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert exc.value.field == "kafka" and "min_insync_replicas" in exc.value.message
    path.write_text("kafka:\n  replication_factor: 3\n  min_insync_replicas: 2\n", encoding="utf-8")
    assert load_settings(path).kafka.min_insync_replicas == 2


def test_chaogao_over_http_without_its_url_and_secret_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "offsite.yaml"
    path.write_text("chaogao:\n  transport: http\n  url: https://p.example/v1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert exc.value.field == "chaogao" and "url and secret" in exc.value.message
    assert exc.value.line == 2
    path.write_text("chaogao:\n  transport: http\n  url: https://p.example/v1\n  secret: s\n",
                    encoding="utf-8")  # fmt: skip
    assert load_settings(path).chaogao.outbound(tmp_path).name == "http"  # type: ignore[union-attr]

"""Bad command-line arguments exit non-zero with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DECIDED = "2026-11-23T10:00:00+08:00"  # the day after the passes of _wim


def offsite(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offsite.cli", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["simulate", "--vehicles", "-3"], "must be positive: -3"),
        (["simulate", "--overload-share", "2"], "must be between 0 and 1"),
        (["simulate", "--start", "2026-11-22T08:00"], "needs a UTC offset"),
        (["services", "sideways"], "invalid choice: 'sideways'"),
        (["run", "--stage", "bogus"], "invalid choice: 'bogus'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["replay", "--topic", "road.wim", "/nonexistent.jsonl"], "cannot read /nonexistent.jsonl"),
        (
            ["ingest", "import", "--format", "tmg", "/nonexistent.txt"],
            "cannot read /nonexistent.txt",
        ),
        (["ingest", "import", "--format", "vendorx", "f"], "invalid choice: 'vendorx'"),
        (["replay", "--format", "kakou", "/nonexistent.xml"], "cannot read /nonexistent.xml"),
        (
            ["replay", "--format", "tmg", "--topic", "road.wim", "w.txt"],
            "do not apply with --format",
        ),
        (["stats", "--from", "2026-13-01", "--to", "2026-12-31"], "invalid fromisoformat value"),
        (["stats", "--from", "2026-12-31", "--to", "2026-12-01"], "is before --from"),
        (["chaogao", "police", "--from", "2026-12-07", "--to", "2026-12-01"], "is before --from"),
        (["chaogao", "police", "--from", "12/01", "--to", "2026-12-01"], "invalid fromisoformat"),
        (
            ["chaogao", "flag", "case-1", "--kind", "bent", "--reason", "x", "--by", "w"],
            "invalid choice: 'bent'",
        ),
    ],
)
def test_bad_arguments_one_line(args: list[str], phrase: str) -> None:
    # replay reads its files before it needs a broker, so no service is involved here
    res = offsite(*args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], res.stderr


def test_bad_config_file_names_file_line_field(tmp_path: Path) -> None:
    cfg = tmp_path / "offsite.yaml"
    cfg.write_text("pipeline:\n  min_plate_confidence: 3\n", encoding="utf-8")
    res = offsite("--config", str(cfg), "services", "status")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"offsite: config error: {cfg}:2: pipeline.min_plate_confidence: "
        "Input should be less than or equal to 1"
    )


def test_help_for_every_verb() -> None:
    for verb in ("demo", "services", "run", "replay", "simulate", "db", "schemas"):
        res = offsite(verb, "--help")
        assert res.returncode == 0 and "usage: offsite" in res.stdout


def _wim(rid: str, gross: int, axles: int, drive: int | None = None) -> str:
    base = gross // axles
    rec = {
        "record_id": rid, "site_id": "G107-K1520-S", "device_id": "WIM-G107-1520", "lane": 1,
        "ts": "2026-11-22T08:15:02+08:00", "speed_kmh": 50.0, "axle_count": axles,
        "axle_weights_kg": [base] * (axles - 1) + [gross - base * (axles - 1)],
        "axle_spacings_mm": [3200, 1350, 7000, 1310, 1310][: axles - 1],
        "gross_weight_kg": gross, "vehicle_kind": "rigid" if axles == 2 else "combination",
        "drive_axles": drive, "plate": "湘A12345",
    }  # fmt: skip
    return json.dumps(rec, ensure_ascii=False)


def test_rules_evaluate_as_measured_reproduces_domain_worked_examples() -> None:
    lines = [
        _wim("a", 18_000, 2), _wim("b", 19_000, 2), _wim("c", 19_001, 2),
        _wim("d", 55_300, 6, 2), _wim("e", 55_300, 6, 1), _wim("f", 120_000, 5), "{bad",
    ]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "offsite.cli", "rules", "evaluate", "--as-measured",
         "--baseline", "configs/baselines/national.yaml", "--at", DECIDED],
        cwd=ROOT, input="\n".join(lines) + "\n", capture_output=True, text=True,
    )  # fmt: skip
    got = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(d["record_id"], d["outcome"], d["fine_cny"], d["overload_kg"]) for d in got] == [
        ("a", "none", None, 0),
        ("b", "warning", None, 1_000),
        ("c", "fine", 500, 1_001),
        ("d", "fine", 3_000, 6_300),
        ("e", "fine", 4_500, 9_300),
        ("f", "fine", 30_000, 77_000),
    ]
    assert res.returncode == 1 and "line 7: invalid JSON" in res.stderr


def test_rules_check_prints_the_table() -> None:
    res = offsite("rules", "check", "configs/baselines/national.yaml")
    assert res.returncode == 0
    assert "cn-national-overload v1 — national — 法律文件" in res.stdout
    assert "500 CNY per 1000 kg, partial unit down, cap 30000 CNY" in res.stdout


def test_rules_check_refuses_a_baseline_above_art43_with_file_line_field(tmp_path: Path) -> None:
    text = (ROOT / "configs/baselines/national.yaml").read_text(encoding="utf-8")
    path = tmp_path / "greedy.yaml"
    path.write_text(text.replace("amount_cny: 500,", "amount_cny: 800,"), encoding="utf-8")
    res = offsite("rules", "check", str(path))
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "amount_cny: 500," in s)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(
        f"offsite: config error: {path}:{line}: violations.road.overload.gross.tiers.1.outcome:"
        " exceeds 2016 No. 62 Art. 43 (2)"
    )
    assert len(res.stderr.splitlines()) == 1


def test_rules_check_without_a_file_checks_every_configured_baseline_and_jurisdiction(
    tmp_path: Path,
) -> None:
    res = offsite("rules", "check")
    assert res.returncode == 0 and "cn-national-overload v1" in res.stdout
    assert "has a baseline for its jurisdiction: national" in res.stdout
    # a site of a jurisdiction without a baseline stops it, naming the registry's line
    sites = (ROOT / "configs/sites.yaml").read_text(encoding="utf-8")
    (tmp_path / "sites.yaml").write_text(sites.replace("jurisdiction: national", "jurisdiction: hunan", 1),
                                         encoding="utf-8")  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "offsite.cli", "rules", "check"], cwd=ROOT, capture_output=True,
        text=True, env={**os.environ, "OFFSITE_REGISTRY": str(tmp_path / "sites.yaml")},
    )  # fmt: skip
    assert res.returncode == 2
    assert "sites.0.jurisdiction: site G107-K1520-S: no baseline configured for jurisdiction " \
           "'hunan'" in res.stderr  # fmt: skip


def test_rules_evaluate_in_registry_mode_judges_a_pass_as_the_pipeline_does() -> None:
    """Issue #11 item 17: 140 km/h is outside the device's range: reviewed offline as in the
    pipeline (it used to be fined offline); a blue plate on 60 t is not this vehicle's."""
    ok = {**json.loads(_wim("ok", 60_000, 6, 2)), "plate_color": "yellow"}
    fast = {**ok, "record_id": "fast", "speed_kmh": 140.0}
    blue = {**ok, "record_id": "blue", "plate_color": "blue"}
    car = {**ok, "record_id": "car", "vehicle_type": "car"}
    res = subprocess.run(
        [sys.executable, "-m", "offsite.cli", "rules", "evaluate",
         "--baseline", "configs/baselines/national.yaml", "--at", DECIDED],
        cwd=ROOT, capture_output=True, text=True,
        input="".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (ok, fast, blue, car)),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    got = {d["record_id"]: d for d in map(json.loads, res.stdout.splitlines())}
    assert got["ok"]["outcome"] == "fine"
    assert got["fast"]["outcome"] == "review"
    assert any("speed 140 km/h outside" in r for r in got["fast"]["reasons"])
    no_colour = {**ok, "record_id": "no_colour", "plate_color": None}
    res = subprocess.run(
        [sys.executable, "-m", "offsite.cli", "rules", "evaluate",
         "--baseline", "configs/baselines/national.yaml", "--at", DECIDED],
        cwd=ROOT, capture_output=True, text=True, input=json.dumps(no_colour) + "\n",
    )  # fmt: skip
    got |= {d["record_id"]: d for d in map(json.loads, res.stdout.splitlines())}
    for rid in ("blue", "car", "no_colour"):
        assert got[rid]["outcome"] == "review"
        assert any(r.startswith("plate:not_this_vehicle") for r in got[rid]["reasons"]), rid


def test_ingest_formats_lists_each_station_format() -> None:
    res = offsite("ingest", "formats")
    assert res.returncode == 0, res.stderr
    names = [line.split()[0] for line in res.stdout.splitlines() if not line.startswith(" ")]
    assert names == ["zhichao", "kakou", "tmg"]
    assert "POST /v1/formats/kakou" in res.stdout and "WriteVehicleInfo" in res.stdout

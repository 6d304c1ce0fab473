"""Bad command-line arguments exit non-zero with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
         "--baseline", "configs/baselines/national.yaml"],
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

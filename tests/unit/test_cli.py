"""Bad command-line arguments exit non-zero with one line."""

from __future__ import annotations

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
        (["run", "--stage", "evidence"], "invalid choice: 'evidence'"),
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

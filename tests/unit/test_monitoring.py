"""The shipped Prometheus rules and Grafana dashboard (configs/monitoring/) pass promtool and
name only metrics that offsite exposes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY, generate_latest

import sinks.metrics  # noqa: F401  (registers the metrics)

DIR = Path(__file__).resolve().parents[2] / "configs" / "monitoring"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exposed() -> set[str]:
    names = set()
    for metric in REGISTRY.collect():
        # a labelled metric with no series yet has no samples: its name and its suffixes
        names |= {metric.name} | {metric.name + suffix for suffix in SUFFIXES}
    return names


def referenced(expr: str) -> set[str]:
    return set(re.findall(r"\boffsite_[a-z_]+", expr))


def test_alert_rules_pass_promtool_and_use_exposed_metrics() -> None:
    path = DIR / "offsite-rules.yml"
    check = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    rules = [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    names = {n for r in rules for n in referenced(r["expr"])}
    assert names and names <= exposed(), names - exposed()


def test_the_dashboard_uses_exposed_metrics_only() -> None:
    dash = json.loads((DIR / "offsite-grafana.json").read_text(encoding="utf-8"))
    names = {n for p in dash["panels"] for t in p["targets"] for n in referenced(t["expr"])}
    assert len(dash["panels"]) >= 10
    assert names and names <= exposed(), names - exposed()


def test_the_exposition_passes_promtool() -> None:
    text = generate_latest().decode()
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

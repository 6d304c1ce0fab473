"""Where the national baseline lives, for callers without settings (an evidence package of a
decision whose baseline file is not configured falls back to it)."""

from pathlib import Path

NATIONAL_FILE = Path(__file__).resolve().parents[1] / "configs" / "baselines" / "national.yaml"

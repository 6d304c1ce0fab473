"""The composition root: command line, settings, embedded services, wiring of the stages."""

from .config import Settings, load_registry, load_settings
from .pipeline import STAGES, run

__all__ = ["STAGES", "Settings", "load_registry", "load_settings", "run"]

"""Getting sensor data into the raw topics: replay of recorded files and the traffic simulator."""

from .replay import paced, read_records
from .simulate import Pass, SimulationConfig, Truth, simulate

__all__ = ["Pass", "SimulationConfig", "Truth", "paced", "read_records", "simulate"]

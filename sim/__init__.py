"""The traffic simulator: road and waterway traffic with ground truth, rendered plates and hulls,
the feeding of simulated traffic, what the regulations call for on it, and scoring — for the
demo, tests and benchmarks. Nothing of the domain (ingest, detectors, rules, evidence, sinks)
imports it."""

from .road import Pass, SimulationConfig, Truth, simulate

__all__ = ["Pass", "SimulationConfig", "Truth", "simulate"]

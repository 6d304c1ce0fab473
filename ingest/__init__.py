"""Getting real sensor data into the raw topics: the gateway, the folder watcher, replay of
recorded files, AIS decoding. The traffic simulator is in ``sim``."""

from .replay import paced, read_records

__all__ = ["paced", "read_records"]

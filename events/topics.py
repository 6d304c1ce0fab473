"""Topic names and message keys: the only place a topic name is spelled."""

ROAD_WIM = "road.wim"
ROAD_ANPR = "road.anpr"
DETECTIONS = "detections"
VIOLATIONS = "violations"
CASES = "cases"
ALERTS = "alerts"
LEADS = "leads"

ALL_TOPICS = (ROAD_WIM, ROAD_ANPR, DETECTIONS, VIOLATIONS, CASES, ALERTS, LEADS)


def dlq(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}.dlq"

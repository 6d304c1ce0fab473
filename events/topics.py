"""Topic names and message keys: the only place a topic name is spelled."""

ROAD_WIM = "road.wim"
ROAD_ANPR = "road.anpr"
DETECTIONS = "detections"
VIOLATIONS = "violations"
CASES = "cases"
ALERTS = "alerts"
LEADS = "leads"
# waterways (issue #13): raw AIS lines (key: receiver id), decoded AIS (key: MMSI), checkpoint
# captures (key: checkpoint id), and the waterway detections and violations beside the road
# ones, so that road consumers never see a message of another shape (key: site id)
WATER_AIS_RAW = "water.ais.raw"
WATER_AIS = "water.ais"
WATER_CAMERA = "water.camera"
WATER_DETECTIONS = "water.detections"
WATER_VIOLATIONS = "water.violations"

ROAD_TOPICS = (ROAD_WIM, ROAD_ANPR, DETECTIONS, VIOLATIONS, CASES, ALERTS, LEADS)
WATER_TOPICS = (WATER_AIS_RAW, WATER_AIS, WATER_CAMERA, WATER_DETECTIONS, WATER_VIOLATIONS)
ALL_TOPICS = ROAD_TOPICS + WATER_TOPICS


def dlq(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}.dlq"

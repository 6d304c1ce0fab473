"""Topic names and message keys: the only place a topic name is spelled."""

ROAD_WIM = "road.wim"
ROAD_ANPR = "road.anpr"
# static reweighs (精检) on a site's certified static scale, for the drift watch (key: site_id)
ROAD_REWEIGH = "road.reweigh"
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

ROAD_TOPICS = (ROAD_WIM, ROAD_ANPR, ROAD_REWEIGH, DETECTIONS, VIOLATIONS, CASES, ALERTS, LEADS)
WATER_TOPICS = (WATER_AIS_RAW, WATER_AIS, WATER_CAMERA, WATER_DETECTIONS, WATER_VIOLATIONS)
ALL_TOPICS = ROAD_TOPICS + WATER_TOPICS
# Topics read whole, in the order they were written, so they have one partition. The waterway
# detection stage decides over the whole reach (a vessel is dark only when no receiver heard it,
# and AIS time is one time for the reach), so it reads every report and every capture in one
# process, a second process in its group standing by with none; and the raw lines keep the
# receivers' feeds interleaved as they came, so that decoding does not put one receiver's hour
# before another's (which would make the other look silent). One process decodes tens of
# thousands of sentences a second (bench.ais): far more than a province's receivers send.
WHOLE_TOPICS = frozenset({WATER_AIS_RAW, WATER_AIS, WATER_CAMERA})


def dlq(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}.dlq"

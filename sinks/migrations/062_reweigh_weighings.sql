-- The detection stage's recent WIM weighings with the plate read for each (detectors/stage.py,
-- issue #27): a static reweigh is matched to the weighing of its vehicle up to 30 min before
-- it, so a reweigh read just after a restart still finds the weighings read before it. Only
-- what the match and the drift watch need; kept for the matching window behind each site's
-- latest weighing (older rows are deleted as new ones come).
CREATE TABLE reweigh_weighings (
    record_id        text PRIMARY KEY,
    site_id          text NOT NULL,
    plate            text NOT NULL,
    ts               timestamptz NOT NULL,
    device_id        text NOT NULL,
    lane             integer NOT NULL,
    gross_weight_kg  integer NOT NULL
);
CREATE INDEX reweigh_weighings_site_ts ON reweigh_weighings (site_id, ts);

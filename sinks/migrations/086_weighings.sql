-- Every weighing the detection stage judged (issue #26 must-have 7): the statistics' vehicles
-- weighed (检测车辆数) and overloaded (超限车辆数) per site and day come from here, as the
-- detections and cases keep only the passes over a limit. One row per WIM record (its device's
-- own id), written with ON CONFLICT DO NOTHING before the stage commits its offsets: a batch read
-- again after a crash, or a record the device sent twice, counts once.
CREATE TABLE weighings (
    device_id   text NOT NULL,
    record_id   text NOT NULL,
    site_id     text NOT NULL,
    ts          timestamptz NOT NULL,
    overloaded  boolean NOT NULL,
    PRIMARY KEY (device_id, record_id)
);
CREATE INDEX weighings_ts_site ON weighings (ts, site_id);

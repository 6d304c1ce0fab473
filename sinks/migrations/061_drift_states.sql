-- The drift watch's state per WIM device and lane (detectors/drift.py, issue #29): the reference
-- after the last calibration, the CUSUM sums, the alarm. Kept so a restart continues the watch.
CREATE TABLE drift_states (
    device_id   text NOT NULL,
    lane        integer NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, lane)
);

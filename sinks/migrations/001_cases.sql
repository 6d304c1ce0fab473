-- Cases: one row per violation decided by the rules stage, waiting for officer review.
CREATE TABLE cases (
    case_id        text PRIMARY KEY,
    violation_id   text NOT NULL UNIQUE,
    detection_id   text NOT NULL,
    violation_code text NOT NULL,
    record_id      text NOT NULL,
    site_id        text NOT NULL,
    ts             timestamptz NOT NULL,
    plate          text,
    plate_color    text,
    outcome        text NOT NULL CHECK (outcome IN ('no_penalty', 'warning', 'fine', 'review')),
    fine_cny       integer CHECK (fine_cny IS NULL OR fine_cny >= 0),
    measured_kg    integer NOT NULL,
    tolerance_kg   integer NOT NULL,
    limit_kg       integer NOT NULL,
    overload_kg    integer NOT NULL,
    tier           text NOT NULL,
    legal_basis    text NOT NULL,
    penalty_basis  text NOT NULL,
    status         text NOT NULL DEFAULT 'pending_review'
                   CHECK (status IN ('pending_review', 'confirmed', 'rejected', 'approved')),
    violation      jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- one case per pass and violation, whatever rule version decided it
    UNIQUE (detection_id, violation_code)
);
CREATE INDEX cases_plate_ts ON cases (plate, ts);
CREATE INDEX cases_status ON cases (status, ts);

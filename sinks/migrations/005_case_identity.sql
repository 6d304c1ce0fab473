-- A case is the pass (site, device, record) and the violation code, whatever versions decided
-- it: a re-decision under a new detector or baseline version updates the case it belongs to
-- (with a trail of every decision) instead of opening a second case — a second fine — for one
-- pass. A case already confirmed is not changed; review_reason says it needs another look.
ALTER TABLE cases ADD COLUMN device_id text;
UPDATE cases SET device_id = violation->'detection'->>'device_id';
ALTER TABLE cases ALTER COLUMN device_id SET NOT NULL;
ALTER TABLE cases DROP CONSTRAINT cases_detection_id_violation_code_key;
ALTER TABLE cases ADD CONSTRAINT cases_pass UNIQUE (site_id, device_id, record_id, violation_code);
ALTER TABLE cases ADD COLUMN review_reason text;
ALTER TABLE cases ADD COLUMN notices jsonb NOT NULL DEFAULT '[]';

-- Every decision a case has had, the one applied and the ones that came later.
CREATE TABLE case_decisions (
    case_id      text NOT NULL REFERENCES cases (case_id),
    violation_id text NOT NULL,
    outcome      text NOT NULL,
    fine_cny     integer,
    rule         text NOT NULL,
    rule_version text NOT NULL,
    applied      boolean NOT NULL,  -- false: came after the case was confirmed, not applied
    violation    json NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, violation_id)
);
INSERT INTO case_decisions (case_id, violation_id, outcome, fine_cny, rule, rule_version,
                            applied, violation, decided_at)
SELECT case_id, violation_id, outcome, fine_cny, violation->>'rule', violation->>'rule_version',
       true, violation, created_at FROM cases;

-- Later detections of the same trip (行政处罚法 Art. 29): evidence of the case, never a case.
CREATE TABLE case_attachments (
    violation_id text PRIMARY KEY,
    case_id      text NOT NULL,
    site_id      text NOT NULL,
    device_id    text NOT NULL,
    record_id    text NOT NULL,
    ts           timestamptz NOT NULL,
    violation    json NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_attachments_case ON case_attachments (case_id);

-- The passes the same-trip rule has seen, written by the rules stage before it decides.
CREATE TABLE trips (
    case_id      text PRIMARY KEY,
    plate        text NOT NULL,
    plate_color  text,
    ts           timestamptz NOT NULL,
    primary_case text
);
CREATE INDEX trips_vehicle_ts ON trips (plate, plate_color, ts);
CREATE INDEX cases_plate_color_ts ON cases (plate, plate_color, ts);

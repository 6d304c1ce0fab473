-- Issue #25, review A3/A5/B11: an amended proposal (变更拟处罚意见) is notified again, so a case
-- can have several 违法行为通知书. The table keeps every notice a case was given (numbered
-- documents never disappear), each with its sequence number in the case; the newest one is the
-- case's current notice and the only one not superseded. ``violation_notices`` becomes a view of
-- the current notices (simple, so PostgreSQL updates and inserts through it), so every reader
-- of "the case's notice" reads the latest one.
ALTER TABLE violation_notices RENAME TO notices;
ALTER TABLE notices RENAME CONSTRAINT violation_notices_pkey TO notices_case_pkey;
ALTER TABLE notices ADD COLUMN seq integer NOT NULL DEFAULT 1 CHECK (seq >= 1);
ALTER TABLE notices ADD COLUMN superseded_at timestamptz;  -- when a newer notice replaced it
ALTER TABLE notices DROP CONSTRAINT notices_case_pkey;
ALTER TABLE notices ADD PRIMARY KEY (case_id, seq);
CREATE UNIQUE INDEX notices_current ON notices (case_id) WHERE superseded_at IS NULL;
CREATE VIEW violation_notices AS SELECT * FROM notices WHERE superseded_at IS NULL;

-- The officer's amended proposal: what the notice in force proposed, what is proposed now, the
-- facts adopted from the party's statement or the hearing, and why (the transition's reason).
CREATE TABLE proposal_amendments (
    amendment_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id        text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    notice_no      text,                  -- the notice it amends (none: a waterway proposal)
    old_outcome    text NOT NULL,
    old_fine_cny   integer,
    outcome        text NOT NULL CHECK (outcome IN ('fine', 'warning')),
    fine_cny       integer CHECK (fine_cny IS NULL OR fine_cny > 0),
    tier_name      text NOT NULL,
    legal_basis    text NOT NULL,
    penalty_basis  text NOT NULL,
    facts          text NOT NULL,
    reason         text NOT NULL,
    actor          text NOT NULL,
    at             timestamptz NOT NULL,
    CHECK ((outcome = 'fine') = (fine_cny IS NOT NULL))
);
CREATE INDEX proposal_amendments_case ON proposal_amendments (case_id, amendment_id);

ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check CHECK (status IN (
    'pending_review', 'confirmed', 'rejected', 'transferred', 'legal_review', 'approved',
    'sent_back', 'notice_issued', 'statement_received', 'decided', 'closed',
    'hearing_requested', 'heard', 'not_punished', 'withdrawn', 'amended'));

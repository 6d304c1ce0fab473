-- The case lifecycle (sinks/lifecycle.py): every state a case can be in, every transition as a
-- row (who, when, why), the head of each evidence package's custody log, plate corrections,
-- notices and the party's statements. A later state (payment, 抄告, appeal) is a new migration
-- that drops and re-creates cases_status_check with the state added.
ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check CHECK (status IN (
    'pending_review', 'confirmed', 'rejected', 'transferred', 'legal_review', 'approved',
    'sent_back', 'notice_issued', 'statement_received', 'decided', 'closed'));

CREATE TABLE case_transitions (
    transition_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id        text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    action         text NOT NULL,
    from_status    text NOT NULL,
    to_status      text NOT NULL,
    actor          text NOT NULL,           -- the account's name, or 'party'
    actor_role     text NOT NULL,
    reason_code    text,
    reason         text,
    detail         jsonb NOT NULL DEFAULT '{}',
    at             timestamptz NOT NULL,
    -- the custody entry written with it: the package's log and this table name each other
    custody_seq    integer NOT NULL,
    custody_hash   text NOT NULL
);
CREATE INDEX case_transitions_case ON case_transitions (case_id, transition_id);
CREATE INDEX case_transitions_action_at ON case_transitions (action, at);

-- The last entry of every package's custody log as this store last wrote it: a log cut short
-- or rolled back is still a valid chain, only its length and head tell (offsite evidence verify).
CREATE TABLE custody_heads (
    case_id     text PRIMARY KEY,
    length      integer NOT NULL CHECK (length > 0),
    head_hash   text NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- An officer's correction of a fact (the plate): the decision before and after, whole.
CREATE TABLE case_corrections (
    correction_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id        text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    field          text NOT NULL,
    old_value      text,
    new_value      text,
    old_violation  json NOT NULL,
    new_violation  json NOT NULL,
    actor          text NOT NULL,
    at             timestamptz NOT NULL
);
CREATE INDEX case_corrections_case ON case_corrections (case_id);

-- 违法行为通知书 (the notice of the violation): one per case, its content fixed as issued.
CREATE SEQUENCE notice_numbers;
CREATE TABLE violation_notices (
    case_id        text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    notice_no      text NOT NULL UNIQUE,
    lookup_code    text NOT NULL UNIQUE,
    plate          text,
    issued_at      timestamptz NOT NULL,
    issued_by      text NOT NULL,
    statement_due  date NOT NULL,
    hearing_due    date,                    -- set when the proposed fine calls for a hearing (听证)
    document       jsonb NOT NULL
);

-- The party's statements (陈述、申辩), from the public page.
CREATE TABLE statements (
    statement_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    body          text NOT NULL,
    images        jsonb NOT NULL DEFAULT '[]',
    submitted_at  timestamptz NOT NULL,
    address       text
);
CREATE INDEX statements_case ON statements (case_id, statement_id);

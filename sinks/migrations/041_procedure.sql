-- Issue #25: the party (当事人), 立案 and its 90 days (Art. 60), and the service (送达) of every
-- document that must be served; deadlines run from the service date, so a notice has none
-- until it is served.

-- 立案: the day the case was opened (the officer's confirmation) and the day it must be decided by
CREATE TABLE case_files (
    case_id        text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    filed_at       timestamptz NOT NULL,
    filed_by       text NOT NULL,
    decision_due   date NOT NULL,          -- 立案之日起九十日内 (Art. 60)
    decision_due_provisional boolean NOT NULL DEFAULT false
);

-- The party as the documents name it: from the vehicle-owner source at 立案, corrected by an
-- officer (each correction in party_corrections and the custody log).
CREATE TABLE case_parties (
    case_id     text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('citizen', 'organization')),
    name        text NOT NULL,
    id_number   text NOT NULL,            -- 身份证号 or 统一社会信用代码
    address     text NOT NULL,
    phone       text,
    e_service_consent  text,              -- the signed 电子送达确认书 on file (its reference), or NULL
    source      text NOT NULL,            -- where it came from: the owner source, or 'officer'
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE TABLE party_corrections (
    correction_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id        text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    old_party      jsonb,
    new_party      jsonb NOT NULL,
    reason         text NOT NULL,
    actor          text NOT NULL,
    at             timestamptz NOT NULL
);
CREATE INDEX party_corrections_case ON party_corrections (case_id);

-- 送达: one row per document served (违法行为通知书, 听证通知书, 行政处罚决定书 …)
CREATE TABLE service_records (
    service_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    document     text NOT NULL,           -- 'notice', 'hearing_notice', 'decision'
    document_no  text NOT NULL,
    method       text NOT NULL CHECK (method IN ('direct', 'left', 'post', 'electronic', 'public')),
    served_on    date NOT NULL,           -- the day it counts as served (公告: 30 days after)
    served_by    text NOT NULL,           -- the officers who served it
    recipient    text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',  -- tracking number, witnesses, consent, notice date
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL,
    UNIQUE (case_id, document, document_no)
);

ALTER TABLE violation_notices ALTER COLUMN statement_due DROP NOT NULL;
ALTER TABLE violation_notices ADD COLUMN served_on date;

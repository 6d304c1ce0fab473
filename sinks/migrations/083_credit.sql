-- Issue #26 must-have 6 (cases/credit.py): the 严重失信 list of 超限 transport — a subject over
-- the line (a vehicle or driver with more than 3 decided cases in a year, an operator over 10 %
-- of its fleet) is drafted, 公示 for 10 working days with an objection, listed for 2 years and
-- removed; 信用修复 on payment and a commitment. Every step is a row of credit_events.
CREATE TABLE credit_entries (
    entry_id            text PRIMARY KEY,      -- the subject and the decision that put it over
    kind                text NOT NULL CHECK (kind IN ('vehicle', 'driver', 'operator')),
    subject             text NOT NULL,         -- plate/colour, ID number or 统一社会信用代码
    name                text,
    status              text NOT NULL CHECK (status IN (
                            'held', 'draft', 'objected', 'dropped', 'listed', 'removed', 'repaired')),
    reason              text NOT NULL,
    cases               jsonb NOT NULL,        -- the decided cases counted: id, day, vehicle
    drafted_on          date NOT NULL,
    objection_due       date NOT NULL,         -- 10 working days after the draft
    objection           jsonb,                 -- the party's objection (text, day, by)
    objection_document  jsonb,                 -- 异议处理决定书
    listed_on           date,
    removed_on          date,
    document            jsonb NOT NULL         -- 拟列入告知书 (empty while held)
);
-- at most one open entry per subject
CREATE UNIQUE INDEX credit_entries_open ON credit_entries (kind, subject)
    WHERE status IN ('held', 'draft', 'objected', 'listed');

CREATE TABLE credit_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id   text NOT NULL REFERENCES credit_entries (entry_id),
    at         timestamptz NOT NULL,
    by_user    text NOT NULL,
    action     text NOT NULL,
    detail     jsonb NOT NULL
);
CREATE INDEX credit_events_entry ON credit_events (entry_id, event_id);

CREATE TABLE credit_repairs (
    repair_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id    text NOT NULL REFERENCES credit_entries (entry_id),
    applied_on  date NOT NULL,
    applied_by  text NOT NULL,
    commitment  jsonb NOT NULL,                -- 信用修复承诺书
    status      text NOT NULL CHECK (status IN ('applied', 'approved', 'refused', 'repaired')),
    decided_on  date,
    decided_by  text,
    decision    jsonb                          -- 信用修复决定书
);
CREATE INDEX credit_repairs_entry ON credit_repairs (entry_id);

-- Issue #25 (must-haves 7-9, review B10): the decision as written (行政处罚决定书 or 不予行政处罚
-- 决定书), its service and payment deadline, and the payments the bank reports (罚缴分离).
CREATE SEQUENCE decision_numbers;

CREATE TABLE penalty_decisions (
    case_id      text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    decision_no  text NOT NULL UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('penalty', 'no_penalty')),
    fine_cny     integer,                -- NULL: no fine
    payment_ref  text,                   -- the agency's 非税收入 payment code
    decided_at   timestamptz NOT NULL,
    decided_by   text NOT NULL,
    served_on    date,                   -- the 决定书 reached the party (service_records)
    payment_due  date,                   -- 15 days from service (Art. 67)
    document     jsonb NOT NULL
);

-- one row per bank record; the bank's reference makes an import idempotent
CREATE TABLE payments (
    bank_ref     text PRIMARY KEY,
    decision_no  text NOT NULL REFERENCES penalty_decisions (decision_no),
    amount_fen   bigint NOT NULL CHECK (amount_fen > 0),
    paid_on      date NOT NULL,
    source       text NOT NULL,          -- the file it came from
    imported_at  timestamptz NOT NULL
);
CREATE INDEX payments_decision ON payments (decision_no);

-- Issue #25 (must-have 8): 延期 / 分期缴纳罚款 (行政处罚法 Art. 66 (2)): the party's application
-- (online or recorded by an officer), the head's approval or refusal with its reason, and the
-- approved plan's due days, from which the late fee runs instead of the 15th day.
CREATE TABLE payment_plans (
    plan_id          bigserial PRIMARY KEY,
    case_id          text NOT NULL REFERENCES cases (case_id) ON UPDATE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('defer', 'instalments')),
    instalments      jsonb NOT NULL,        -- [{"due": "YYYY-MM-DD", "amount_fen": n}, ...]
    grounds          text NOT NULL,         -- the party's 经济困难, as stated
    applied_by       text NOT NULL,         -- 'party', or the officer who recorded it
    applied_at       timestamptz NOT NULL,
    status           text NOT NULL DEFAULT 'applied'
                     CHECK (status IN ('applied', 'approved', 'refused')),
    decided_by       text,
    decided_at       timestamptz,
    decision_reason  text
);
-- one application open or approved at a time
CREATE UNIQUE INDEX payment_plans_open ON payment_plans (case_id)
    WHERE status IN ('applied', 'approved');

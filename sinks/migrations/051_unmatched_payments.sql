-- Issue #25 (must-have 8): a payment the bank reported (file or HTTP callback) that matches no
-- decision, kept for an officer to see (/payments) until a payment of the same reference matches.
CREATE TABLE unmatched_payments (
    bank_ref     text PRIMARY KEY,
    decision_no  text NOT NULL,
    amount_fen   bigint NOT NULL,
    paid_on      date NOT NULL,
    source       text NOT NULL,          -- the file's name, or 'http'
    reason       text NOT NULL,
    received_at  timestamptz NOT NULL
);

-- Issue #25: the 负责人 (head) decides; a hearing can be asked for and held; a case can end in
-- 不予行政处罚 or be withdrawn (撤销立案) before its decision, and neither is a prior offence;
-- a statement received offline is recorded by an officer.
ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_roles_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_roles_check CHECK (cardinality(roles) > 0 AND roles <@
    ARRAY['officer', 'legal_reviewer', 'command_center', 'admin', 'head']);

ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check CHECK (status IN (
    'pending_review', 'confirmed', 'rejected', 'transferred', 'legal_review', 'approved',
    'sent_back', 'notice_issued', 'statement_received', 'decided', 'closed',
    'hearing_requested', 'heard', 'not_punished', 'withdrawn'));

ALTER TABLE statements ADD COLUMN channel text NOT NULL DEFAULT 'online'
    CHECK (channel IN ('online', 'offline'));
ALTER TABLE statements ADD COLUMN recorded_by text;  -- the officer who recorded an offline one

-- 听证: the hearing as held (Art. 64): when the 听证通知书 reached the party, the day, the host
-- (not one of the case's investigators) and the 听证笔录
CREATE TABLE hearings (
    case_id      text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    notified_on  date NOT NULL,
    held_on      date NOT NULL,
    host         text NOT NULL,
    minutes      text NOT NULL,
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL
);

-- Issue #26: a penalty decision can be revoked (撤销行政处罚决定); its 双公示 is withdrawn.
ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check CHECK (status IN (
    'pending_review', 'confirmed', 'rejected', 'transferred', 'legal_review', 'approved',
    'sent_back', 'notice_issued', 'statement_received', 'decided', 'closed',
    'hearing_requested', 'heard', 'not_punished', 'withdrawn', 'amended', 'revoked'));

-- Issue #26 must-have 4 (双公示): what the agency published of each penalty decision and when,
-- and when it withdrew a revoked one (行政处罚法 Art. 48: within 3 working days, with the
-- reason made public). ``row``: the 29 columns as published (personal data masked).
CREATE TABLE decision_publications (
    case_id       text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    decision_no   text NOT NULL,
    decided_on    date NOT NULL,
    row           jsonb NOT NULL,
    published_on  date NOT NULL,   -- the day its export was written (公示)
    withdrawn_on  date,            -- the day its withdrawal was written (撤回)
    withdrawal    text             -- the reason made public with the withdrawal
);
CREATE INDEX decision_publications_decided ON decision_publications (decided_on);

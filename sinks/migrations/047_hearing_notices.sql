-- Issue #25, must-have 6: the 听证通知书 (行政处罚法 Art. 64 (2): the party is told the time and
-- place at least 7 days before the hearing), its number, and the day it was served (送达; the
-- service itself is a row of service_records, document 'hearing_notice').
CREATE TABLE hearing_notices (
    case_id     text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    notice_no   text NOT NULL UNIQUE,
    held_at     timestamptz NOT NULL,
    place       text NOT NULL,
    host        text NOT NULL,
    document    jsonb NOT NULL,
    issued_by   text NOT NULL,
    issued_at   timestamptz NOT NULL,
    served_on   date
);

-- Issue #25: deadlines in working days (Art. 85); a deadline computed for a year the calendar
-- does not know yet is provisional (on or after the true day) until the year is added.
ALTER TABLE violation_notices ADD COLUMN deadlines_provisional boolean NOT NULL DEFAULT false;

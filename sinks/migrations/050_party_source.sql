-- Issue #25 (must-have 1): why the vehicle-owner source named no party at 立案 (it failed, timed
-- out, answered malformed, or does not know the vehicle); the case waits for the officer.
ALTER TABLE case_files ADD COLUMN party_unknown text;

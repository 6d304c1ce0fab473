-- Issue #25 (must-have 9): a decision not paid after the remedy periods is handed to the court
-- for enforcement (行政强制法 Art. 53), and the case may then be closed
ALTER TABLE penalty_decisions ADD COLUMN enforcement_applied_on date;

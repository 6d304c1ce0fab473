-- The violation document is written once and read whole (evidence, replay, the console), never
-- searched inside: json keeps it as sent and skips jsonb's conversion, most of an insert's cost.
ALTER TABLE cases ALTER COLUMN violation TYPE json USING violation::json;

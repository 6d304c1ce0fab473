-- The console's reads stay fast with many cases (bench/console.py measures them).
-- The queues page through a status in (ts, case_id) order, and the case page finds the next
-- case the same way: in index order, no sort of every case of the status. It replaces the
-- (status, ts) index of migration 001.
CREATE INDEX cases_status_ts_id ON cases (status, ts, case_id);
DROP INDEX cases_status;
-- The queue's violation filter lists the codes there are, one index probe per code (sites
-- have the cases_pass index).
CREATE INDEX cases_violation_code ON cases (violation_code);
-- The command center: cases per day by violation and site over the days shown (an index-only
-- scan once the history is longer than that), and the newest cases for its alert list.
CREATE INDEX cases_ts_counts ON cases (ts) INCLUDE (violation_code, site_id);
CREATE INDEX cases_created ON cases (created_at DESC, case_id);

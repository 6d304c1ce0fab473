-- The party's views are one custody entry per session and day (issue #28): the day of the
-- session's last entry, so that the next page, image or PDF of that day adds none.
ALTER TABLE sessions ADD COLUMN custody_day date;

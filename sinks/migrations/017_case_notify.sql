-- Live alerts for the command center (console): every statement that adds cases tells the
-- listeners which ones, once per statement (a COPY of a batch is one notification, not one per
-- row). The payload is the new case ids, at most 100 (a NOTIFY payload is under 8000 bytes);
-- "more" says the listener should read the newest cases itself.
CREATE FUNCTION notify_new_cases() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
    n integer;
BEGIN
    SELECT array_agg(case_id), count(*) INTO ids, n FROM (SELECT case_id FROM new_cases LIMIT 101) s;
    IF n > 0 THEN
        PERFORM pg_notify('offsite_cases', json_build_object(
            'case_ids', ids[1:100], 'more', n > 100)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER cases_notify AFTER INSERT ON cases
    REFERENCING NEW TABLE AS new_cases FOR EACH STATEMENT EXECUTE FUNCTION notify_new_cases();

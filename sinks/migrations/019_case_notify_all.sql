-- Live alerts (017) named at most 100 of a statement's new cases and said "more" for the rest,
-- which no listener read: a batch of more than 100 cases lost the rest of its alerts. Now
-- every new case is named, 100 ids to a notification (a NOTIFY payload is under 8000 bytes;
-- PostgreSQL delivers them at commit, in order).
CREATE OR REPLACE FUNCTION notify_new_cases() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
BEGIN
    FOR ids IN
        SELECT array_agg(case_id ORDER BY case_id) FROM (
            SELECT case_id, (row_number() OVER (ORDER BY case_id) - 1) / 100 AS part
            FROM new_cases
        ) s GROUP BY part ORDER BY part
    LOOP
        PERFORM pg_notify('offsite_cases', json_build_object('case_ids', ids)::text);
    END LOOP;
    RETURN NULL;
END $$;

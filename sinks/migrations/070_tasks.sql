-- Dispatch (issue #30): a task hands a lead, an alert, a device fault or a case to a squad
-- (执法中队) with a priority, a deadline and instructions; the squad's field officer records the
-- result. A lead's task result closes the lead; a lead that became a case names it.
CREATE TABLE tasks (
    task_id       text PRIMARY KEY,
    source_kind   text NOT NULL CHECK (source_kind IN ('lead', 'alert', 'device', 'case')),
    source_id     text NOT NULL,
    kind          text NOT NULL,          -- the lead's kind, the case's violation, device_fault
    site_id       text,                   -- where it is (a road site, a checkpoint, a reach)
    squad_id      text NOT NULL,
    priority      text NOT NULL CHECK (priority IN ('urgent', 'high', 'normal', 'low')),
    instructions  text NOT NULL DEFAULT '',
    created_by    text NOT NULL,          -- a username, or 'auto' for the dispatch rules
    created_at    timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
    escalated_at  timestamptz,            -- overdue: told to the squad leader and command center
    result        text CHECK (result IN ('found', 'not_found', 'case_opened', 'transferred')),
    result_text   text,
    result_photos jsonb,                  -- [{uri, sha256, type}]
    result_lat    double precision,
    result_lon    double precision,
    case_id       text REFERENCES cases (case_id),  -- the case the task's lead became
    done_by       text,
    done_at       timestamptz,
    CHECK ((status = 'done') = (result IS NOT NULL)),
    CHECK (result <> 'case_opened' OR case_id IS NOT NULL)
);
-- one live task per source: dispatching twice, by hand or by the rules, makes no second one
CREATE UNIQUE INDEX tasks_one_per_source ON tasks (source_kind, source_id)
    WHERE status <> 'cancelled';
CREATE INDEX tasks_squad_status ON tasks (squad_id, status, due_at);
CREATE INDEX tasks_created ON tasks (created_at);

ALTER TABLE leads DROP CONSTRAINT leads_status_check;
ALTER TABLE leads ADD CONSTRAINT leads_status_check CHECK (status IN (
    'pending_review', 'dispatched', 'transferred', 'dismissed', 'confirmed'));
ALTER TABLE leads ADD COLUMN case_id text REFERENCES cases (case_id);
CREATE INDEX leads_case ON leads (case_id) WHERE case_id IS NOT NULL;

-- field officers and squad leaders sign in too ('head' is the case lifecycle's, issue #25: listed
-- here so that whichever migration runs last keeps every role)
ALTER TABLE accounts DROP CONSTRAINT accounts_roles_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_roles_check CHECK (cardinality(roles) > 0 AND roles <@
    ARRAY['officer', 'legal_reviewer', 'command_center', 'admin', 'head', 'field_officer',
          'squad_leader']);

-- live follow-up: every change of a task is announced, as new cases are (migration 019)
CREATE FUNCTION notify_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('offsite_tasks', json_build_object(
        'task_id', NEW.task_id, 'status', NEW.status, 'squad_id', NEW.squad_id,
        'escalated', NEW.escalated_at IS NOT NULL)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION notify_task();

-- Leads: findings for officers to follow up (cloned plates, missing plates for transfer to the
-- police, restricted hours, illegal-operation patterns). Never a penalty by themselves.
CREATE TABLE leads (
    lead_id     text PRIMARY KEY,
    kind        text NOT NULL,
    plate       text,
    site_id     text NOT NULL,
    ts          timestamptz NOT NULL,
    score       real NOT NULL,
    status      text NOT NULL DEFAULT 'pending_review'
                CHECK (status IN ('pending_review', 'transferred', 'dismissed', 'confirmed')),
    lead        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_kind_ts ON leads (kind, ts);
CREATE INDEX leads_plate ON leads (plate, ts);

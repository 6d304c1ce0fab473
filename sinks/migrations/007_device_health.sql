-- Device health (detectors/health.py): each device's latest message as the broker received it
-- and the conditions raised for it, shared by every worker of the health stage.
CREATE TABLE device_health (
    device_id  text PRIMARY KEY,
    received   timestamptz,
    skew_s     double precision,
    active     jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- 抄告 (issue #26 must-have 5; 2016 No. 62 Art. 44): one record per closed penalty case for the
-- road transport agency of the vehicle's home region, sent through the outbound interface
-- (sinks/outbound.py); the record's id is derived from the case, so a second make is a no-op.
CREATE TABLE chaogao (
    chaogao_id      text PRIMARY KEY,
    case_id         text NOT NULL UNIQUE REFERENCES cases (case_id) ON UPDATE CASCADE,
    region          text,                  -- the plate's prefix (湘A); NULL while held
    recipient       text,                  -- the home region's 道路运输管理机构, as addressed
    status          text NOT NULL CHECK (status IN ('held', 'pending', 'sent')),
    held_reason     text,                  -- why an officer must name the region (held)
    record          jsonb NOT NULL,        -- the Art. 44 fields, as sent
    pdf             bytea NOT NULL,        -- the 抄告函, as sent
    closed_on       date NOT NULL,
    due             date NOT NULL,         -- 7 working days from the closing
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,           -- pending: when the next attempt is due
    last_error      text,
    sent_at         timestamptz            -- NULL until the platform (or the folder) took it
);
CREATE INDEX chaogao_due ON chaogao (status, next_attempt_at);

-- every attempt to send a record, kept
CREATE TABLE chaogao_attempts (
    attempt_id   bigserial PRIMARY KEY,
    chaogao_id   text NOT NULL REFERENCES chaogao (chaogao_id),
    at           timestamptz NOT NULL,
    transport    text NOT NULL,
    ok           boolean NOT NULL,
    detail       text NOT NULL
);

-- Art. 45: a vehicle that does not conform to GB 1589 or does not match its 行驶证, recorded
-- (by an officer, or found by comparing the weighing with the agency's vehicle records) and
-- reported to the police (公安机关交通管理部门) periodically: `offsite chaogao police`
CREATE TABLE chaogao_nonconforming (
    case_id     text PRIMARY KEY REFERENCES cases (case_id) ON UPDATE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('gb1589', 'registration')),
    reason      text NOT NULL,
    flagged_by  text NOT NULL,
    flagged_at  timestamptz NOT NULL
);

-- Gateway credentials: one row per API key a device was given. Only the key's SHA-256 is kept;
-- the key itself is shown once, when it is created. key_id is the key's public part, to name
-- it when revoking.
CREATE TABLE device_keys (
    key_id      text PRIMARY KEY,
    device_id   text NOT NULL,
    key_sha256  text NOT NULL UNIQUE CHECK (key_sha256 ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX device_keys_device ON device_keys (device_id);
-- Every message the gateway or the folder watcher got acknowledged by the broker, by the id its
-- device gave it: a re-send is answered from here and produces nothing. A row is inserted in
-- the same transaction that waits for the broker's acknowledgement and commits only after it,
-- so a twin request waits on the row, and a gateway that dies before the broker acknowledged
-- leaves no row behind.
CREATE TABLE ingest_accepted (
    kind        text NOT NULL,
    device_id   text NOT NULL,
    message_id  text NOT NULL,
    digest      text NOT NULL,  -- SHA-256 of the message as produced
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, device_id, message_id)
);
CREATE INDEX ingest_accepted_at ON ingest_accepted (accepted_at);

-- Dead letters re-injected by `offsite dlq replay`: each one once, whatever filters a later
-- replay uses.
CREATE TABLE dlq_replays (
    dlq_topic   text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    replayed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, partition, "offset")
);

-- Squads edited on the admin page (issue #30 must-have 1): configs/squads.yaml seeds this table
-- once, on a fresh install (an empty table); from then on the database is what dispatch reads,
-- and every creation or edit is kept in squad_changes (who, when, before and after).
CREATE TABLE squads (
    squad_id   text PRIMARY KEY,
    seq        bigserial,              -- the order squads are listed in (the file's, then new ones)
    name       text NOT NULL,
    level      text NOT NULL CHECK (level IN ('brigade', 'squad')),
    parent     text,
    sites      text[] NOT NULL DEFAULT '{}',
    reaches    text[] NOT NULL DEFAULT '{}',
    leaders    text[] NOT NULL DEFAULT '{}',
    officers   text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE squad_changes (
    change_id  bigserial PRIMARY KEY,
    squad_id   text NOT NULL,
    changed_by text NOT NULL,          -- a username, or 'configs/squads.yaml' for the seed
    changed_at timestamptz NOT NULL,
    before     jsonb,                  -- NULL: the squad was created
    after      jsonb NOT NULL
);
CREATE INDEX squad_changes_squad ON squad_changes (squad_id, changed_at);

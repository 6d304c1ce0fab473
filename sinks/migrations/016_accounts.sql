-- Console accounts and server-side sessions (sinks/accounts.py). Passwords are Argon2id hashes;
-- a session row keeps only the SHA-256 of its cookie's token, so a copy of this table opens
-- no session. A party's session (the public page) names the one case it may see.
CREATE TABLE accounts (
    account_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,31}$'),
    display_name  text NOT NULL,
    -- one person may hold several roles (a small agency's officer also does legal review);
    -- 审核分离 is then a check on the case, not on the account
    roles         text[] NOT NULL CHECK (cardinality(roles) > 0 AND roles <@
                  ARRAY['officer', 'legal_reviewer', 'command_center', 'admin']),
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash     bytea PRIMARY KEY,
    account_id     integer REFERENCES accounts (account_id) ON DELETE CASCADE,
    party_case_id  text REFERENCES cases (case_id) ON DELETE CASCADE ON UPDATE CASCADE,
    csrf_token     text NOT NULL,
    address        text,
    created_at     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    CHECK ((account_id IS NULL) <> (party_case_id IS NULL))
);
CREATE INDEX sessions_expires ON sessions (expires_at);

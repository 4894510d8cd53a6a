-- +goose Up
-- Accounts that sign in: citizens (IIN, password, phone for the one-time
-- code), officers (id, agency, roles, password, phone) and organisations'
-- systems (client id, secret, platform scopes). Passwords are kept as
-- argon2id strings (PHC format); a system's secret is 32 random bytes, so its
-- SHA-256 (hex) is enough.
CREATE TABLE identity_account (
    kind        text NOT NULL CHECK (kind IN ('citizen', 'officer', 'system')),
    subject     text NOT NULL,
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    agency      text REFERENCES agency (id),
    roles       text[] NOT NULL DEFAULT '{}',
    phone       text NOT NULL DEFAULT '' CHECK (phone = '' OR phone ~ '^\+7[0-9]{10}$'),
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    disabled_at timestamptz,
    PRIMARY KEY (kind, subject),
    CHECK (CASE kind WHEN 'citizen' THEN subject ~ '^[0-9]{12}$'
                     ELSE subject ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' END),
    CHECK ((kind = 'officer') = (agency IS NOT NULL)),
    CHECK (kind <> 'citizen' OR cardinality(roles) = 0),
    -- A person signing in gets the code on this phone.
    CHECK (kind = 'system' OR phone <> '')
);

-- Failed sign-ins per key ("account:<kind>:<subject>", "ip:<address>",
-- "client:<id>"): failures within the window, and the lock they led to.
CREATE TABLE identity_throttle (
    key          text PRIMARY KEY,
    failures     int NOT NULL DEFAULT 0,
    first_at     timestamptz NOT NULL,
    locked_until timestamptz
);

-- A sign-in half done: the password was right, the one-time code was sent.
-- Only SHA-256 of the challenge handle is kept, and the code's SHA-256 salted
-- with the handle.
CREATE TABLE identity_challenge (
    hash       bytea PRIMARY KEY CHECK (length(hash) = 32),
    kind       text NOT NULL,
    subject    text NOT NULL,
    code_hash  bytea NOT NULL CHECK (length(code_hash) = 32),
    attempts   int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    FOREIGN KEY (kind, subject) REFERENCES identity_account (kind, subject) ON DELETE CASCADE
);
CREATE INDEX identity_challenge_expires ON identity_challenge (expires_at);

-- Web sessions of the portal. Only the SHA-256 of the cookie's value is
-- kept; the principal is copied at sign-in (a change of roles needs a new
-- sign-in, at most the session's lifetime later).
CREATE TABLE identity_session (
    id          uuid PRIMARY KEY,
    hash        bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    kind        text NOT NULL CHECK (kind IN ('citizen', 'officer')),
    subject     text NOT NULL,
    name        text NOT NULL DEFAULT '',
    agency      text,
    roles       text[] NOT NULL DEFAULT '{}',
    auth_method text NOT NULL,
    loa         text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX identity_session_subject ON identity_session (kind, subject);

-- +goose Down
DROP TABLE identity_session;
DROP TABLE identity_challenge;
DROP TABLE identity_throttle;
DROP TABLE identity_account;

-- +goose Up
-- Opaque bearer access tokens. Only the SHA-256 of a token is kept: the token
-- itself is shown once, when it is issued. kind/subject/name/agency/roles are
-- the principal the token stands for.
CREATE TABLE access_token (
    id         uuid PRIMARY KEY,
    hash       bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    kind       text NOT NULL CHECK (kind IN ('citizen', 'officer', 'system')),
    subject    text NOT NULL,
    name       text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    agency     text REFERENCES agency (id),
    roles      text[] NOT NULL DEFAULT '{}',
    note       text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    CHECK (expires_at > created_at),
    -- Citizens are named by their IIN; officers and systems by a plain id.
    CHECK (CASE kind WHEN 'citizen' THEN subject ~ '^[0-9]{12}$'
                     ELSE subject ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' END),
    -- Officers, and only officers, belong to an agency and have roles in it.
    CHECK ((kind = 'officer') = (agency IS NOT NULL)),
    CHECK (kind = 'officer' OR cardinality(roles) = 0)
);
-- Finding (and revoking) everything issued to one principal.
CREATE INDEX access_token_subject ON access_token (kind, subject);

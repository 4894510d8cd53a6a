-- +goose Up
-- OpenID Connect: a relying party is a system account with redirect URIs.
ALTER TABLE identity_account ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}';

-- The provider's ID-token signing keys (Ed25519); the newest signs, all are
-- published. The private key is readable only by the identity package's
-- queries (an HSM later, behind the same calls).
CREATE TABLE identity_signing_key (
    kid        text PRIMARY KEY,
    private    bytea NOT NULL CHECK (length(private) = 64),
    created_at timestamptz NOT NULL
);

-- Authorization codes (one minute, single use, PKCE). Only SHA-256 kept.
CREATE TABLE identity_oidc_code (
    hash           bytea PRIMARY KEY CHECK (length(hash) = 32),
    client_id      text NOT NULL,
    kind           text NOT NULL,
    subject        text NOT NULL,
    name           text NOT NULL DEFAULT '',
    agency         text,
    roles          text[] NOT NULL DEFAULT '{}',
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL,
    nonce          text NOT NULL DEFAULT '',
    scope          text NOT NULL,
    auth_time      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);

-- Refresh tokens, rotated on every use; a family is every token descended
-- from one sign-in. Presenting a used one again revokes its family.
CREATE TABLE identity_refresh_token (
    hash       bytea PRIMARY KEY CHECK (length(hash) = 32),
    family     uuid NOT NULL,
    client_id  text NOT NULL,
    kind       text NOT NULL,
    subject    text NOT NULL,
    name       text NOT NULL DEFAULT '',
    agency     text,
    roles      text[] NOT NULL DEFAULT '{}',
    scope      text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX identity_refresh_token_family ON identity_refresh_token (family);

-- +goose Down
DROP TABLE identity_refresh_token;
DROP TABLE identity_oidc_code;
DROP TABLE identity_signing_key;
ALTER TABLE identity_account DROP COLUMN redirect_uris;

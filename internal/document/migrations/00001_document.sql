-- +goose Up
CREATE TABLE signing_key (
    id          text PRIMARY KEY,
    agency_id   text NOT NULL REFERENCES agency (id),
    algorithm   text NOT NULL CHECK (algorithm = 'EdDSA'),
    public_key  bytea NOT NULL CHECK (length(public_key) = 32),
    private_key bytea NOT NULL CHECK (length(private_key) = 64),
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz
);
-- One active key per agency; retired keys still verify what they signed.
CREATE UNIQUE INDEX signing_key_one_active ON signing_key (agency_id) WHERE retired_at IS NULL;

CREATE TABLE document (
    id             uuid PRIMARY KEY,
    number         text NOT NULL UNIQUE,
    kind           text NOT NULL,
    issuer         text NOT NULL REFERENCES agency (id),
    subject_iin    text NOT NULL CHECK (subject_iin ~ '^[0-9]{12}$'),
    -- The application that produced the document: at most one document each.
    source         text NOT NULL UNIQUE,
    fields         jsonb NOT NULL,
    jws            text NOT NULL,
    key_id         text NOT NULL REFERENCES signing_key (id),
    issued_at      timestamptz NOT NULL
);
CREATE INDEX document_subject ON document (subject_iin, issued_at);

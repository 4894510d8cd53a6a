-- +goose Up
-- A consent: a requester's ask for a person's data items, for a purpose and
-- until a date, and what became of it. Decisions change the row (status,
-- decided_at, revoked_at); every change is a row of consent_revision, which
-- a trigger keeps append-only, so the history is never lost.
CREATE TABLE consent (
    id                 uuid PRIMARY KEY,
    subject_iin        text NOT NULL CHECK (subject_iin ~ '^[0-9]{12}$'),
    -- "system:<client id>" or "agency:<agency id>": who may use the consent.
    requester          text NOT NULL,
    requester_name     text NOT NULL DEFAULT '',
    -- The X-Road client (INSTANCE/CLASS/MEMBER/SUBSYSTEM) through which the
    -- requester calls the exchange, if it does.
    exchange_client    text,
    items              text[] NOT NULL CHECK (cardinality(items) > 0),
    purpose            text NOT NULL,
    data_agreement_id  text,
    status             text NOT NULL CHECK (status IN ('pending', 'granted', 'refused', 'revoked')),
    requested_by       text NOT NULL,
    requested_at       timestamptz NOT NULL,
    -- A pending request lapses at request_expires_at.
    request_expires_at timestamptz NOT NULL,
    valid_until        timestamptz NOT NULL,
    decided_at         timestamptz,
    decided_by         text,
    channel            text CHECK (channel IN ('code', 'citizen', 'govstack')),
    revoked_at         timestamptz,
    revoked_by         text,
    -- The one-time code: SHA-256 of id and code, never the code itself.
    code_hash          bytea,
    code_expires_at    timestamptz,
    code_attempts      int NOT NULL DEFAULT 0,
    codes_sent         int NOT NULL DEFAULT 0,
    revision           int NOT NULL DEFAULT 1
);
CREATE INDEX consent_subject ON consent (subject_iin, requested_at DESC);
CREATE INDEX consent_requester ON consent (requester, subject_iin);

CREATE TABLE consent_revision (
    consent_id  uuid NOT NULL REFERENCES consent (id),
    revision    int NOT NULL,
    at          timestamptz NOT NULL,
    status      text NOT NULL,
    actor       text NOT NULL,
    snapshot    jsonb NOT NULL,
    PRIMARY KEY (consent_id, revision)
);

-- Receipts: one signed JWS per grant and per revocation.
CREATE TABLE consent_key (
    id          text PRIMARY KEY,
    public_key  bytea NOT NULL CHECK (length(public_key) = 32),
    private_key bytea NOT NULL CHECK (length(private_key) = 64),
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz
);
CREATE UNIQUE INDEX consent_key_one_active ON consent_key ((true)) WHERE retired_at IS NULL;

CREATE TABLE consent_receipt (
    id          uuid PRIMARY KEY,
    consent_id  uuid NOT NULL REFERENCES consent (id),
    kind        text NOT NULL CHECK (kind IN ('granted', 'revoked')),
    jws         text NOT NULL,
    key_id      text NOT NULL REFERENCES consent_key (id),
    issued_at   timestamptz NOT NULL,
    UNIQUE (consent_id, kind)
);

-- GovStack Consent: policies, data agreements and individuals.
CREATE TABLE consent_policy (
    id           text PRIMARY KEY,
    revision     int NOT NULL,
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    deleted_at   timestamptz
);
CREATE TABLE consent_policy_revision (
    policy_id  text NOT NULL REFERENCES consent_policy (id),
    revision   int NOT NULL,
    at         timestamptz NOT NULL,
    body       jsonb NOT NULL,
    PRIMARY KEY (policy_id, revision)
);
CREATE TABLE consent_data_agreement (
    id          text PRIMARY KEY,
    revision    int NOT NULL,
    -- The requester the agreement's consents go to, its purpose and items.
    requester   text NOT NULL,
    purpose     text NOT NULL,
    items       text[] NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz
);
CREATE TABLE consent_individual (
    id           text PRIMARY KEY,
    subject_iin  text NOT NULL UNIQUE CHECK (subject_iin ~ '^[0-9]{12}$'),
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION consent_revision_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_revision is append-only';
END $$;
-- +goose StatementEnd
CREATE TRIGGER consent_revision_append_only BEFORE UPDATE OR DELETE ON consent_revision
    FOR EACH ROW EXECUTE FUNCTION consent_revision_append_only();
CREATE TRIGGER consent_revision_no_truncate BEFORE TRUNCATE ON consent_revision
    FOR EACH STATEMENT EXECUTE FUNCTION consent_revision_append_only();
CREATE TRIGGER consent_receipt_append_only BEFORE UPDATE OR DELETE ON consent_receipt
    FOR EACH ROW EXECUTE FUNCTION consent_revision_append_only();

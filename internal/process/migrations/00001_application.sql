-- +goose Up
CREATE TABLE application (
    id              uuid PRIMARY KEY,
    number          text NOT NULL UNIQUE,
    service_id      text NOT NULL,
    service_version integer NOT NULL,
    applicant_iin   text NOT NULL CHECK (applicant_iin ~ '^[0-9]{12}$'),
    inputs          jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('submitted', 'completed', 'refused', 'failed')),
    refusal_code    text,
    document_id     uuid REFERENCES document (id),
    idempotency_key text NOT NULL,
    request_hash    bytea NOT NULL,
    submitted_at    timestamptz NOT NULL,
    decided_at      timestamptz,
    FOREIGN KEY (service_id, service_version) REFERENCES service (id, version),
    -- A retried submission with the same key finds the first one.
    UNIQUE (applicant_iin, idempotency_key),
    CHECK ((status = 'completed') = (document_id IS NOT NULL)),
    CHECK ((status = 'refused') = (refusal_code IS NOT NULL))
);
CREATE INDEX application_by_applicant ON application (applicant_iin, submitted_at DESC);

-- The timeline: every step with who or what acted, when and how long.
CREATE TABLE application_step (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES application (id),
    step           text NOT NULL,
    actor          text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    outcome        text NOT NULL,
    attempt        integer NOT NULL DEFAULT 1,
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX application_step_by_application ON application_step (application_id, id);

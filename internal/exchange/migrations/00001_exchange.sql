-- +goose Up
CREATE TABLE exchange_member (
    class      text NOT NULL,
    code       text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (class, code)
);

CREATE TABLE exchange_subsystem (
    class     text NOT NULL,
    code      text NOT NULL,
    subsystem text NOT NULL,
    name      text NOT NULL,
    PRIMARY KEY (class, code, subsystem),
    FOREIGN KEY (class, code) REFERENCES exchange_member
);

CREATE TABLE exchange_service (
    class         text NOT NULL,
    code          text NOT NULL,
    subsystem     text NOT NULL,
    service       text NOT NULL,
    title         text NOT NULL,
    url           text NOT NULL,
    openapi       jsonb,
    personal_data boolean NOT NULL DEFAULT false,
    PRIMARY KEY (class, code, subsystem, service),
    FOREIGN KEY (class, code, subsystem) REFERENCES exchange_subsystem
);

-- Access rights: a client subsystem may call a service (method, path pattern;
-- '*' for any).
CREATE TABLE exchange_access (
    client  text NOT NULL,
    service text NOT NULL,
    method  text NOT NULL DEFAULT '*',
    path    text NOT NULL DEFAULT '*',
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client, service, method, path)
);

-- The platform CA: one row. Its private key signs gateway certificates and
-- catalogue snapshots (production keeps it in an HSM; see doc.go).
CREATE TABLE exchange_ca (
    id   int PRIMARY KEY CHECK (id = 1),
    key  bytea NOT NULL,
    cert bytea NOT NULL
);

-- One-time enrolment tokens; only their SHA-256 is stored.
CREATE TABLE exchange_enrolment (
    token_hash bytea PRIMARY KEY,
    class      text NOT NULL,
    code       text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    FOREIGN KEY (class, code) REFERENCES exchange_member
);

CREATE TABLE exchange_certificate (
    serial     text PRIMARY KEY,
    class      text NOT NULL,
    code       text NOT NULL,
    address    text NOT NULL,
    cert       bytea NOT NULL,
    issued_at  timestamptz NOT NULL,
    revoked_at timestamptz,
    FOREIGN KEY (class, code) REFERENCES exchange_member
);

-- +goose Down
DROP TABLE exchange_certificate, exchange_enrolment, exchange_ca, exchange_access,
    exchange_service, exchange_subsystem, exchange_member;

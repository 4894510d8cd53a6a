-- +goose Up
-- The trust store of electronic signatures: the root certification
-- authorities whose certificates the platform accepts (NCA RK's roots, or a
-- demo CA on a test stand), and the certificates revoked.
CREATE TABLE esign_trust_root (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    der         bytea NOT NULL,
    sha256      bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
    subject     text NOT NULL,
    not_after   timestamptz NOT NULL,
    added_by    text NOT NULL,
    added_at    timestamptz NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    removed_by  text,
    removed_at  timestamptz
);

-- A revoked certificate, named by its issuer (RFC 4514 string, as Go's
-- pkix.Name prints it) and serial number (lowercase hex, no leading zeros).
CREATE TABLE esign_revoked (
    issuer      text NOT NULL,
    serial      text NOT NULL CHECK (serial ~ '^[0-9a-f]+$'),
    reason      text NOT NULL DEFAULT '',
    revoked_at  timestamptz NOT NULL,
    added_by    text NOT NULL,
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (issuer, serial)
);

-- +goose Down
DROP TABLE esign_revoked;
DROP TABLE esign_trust_root;

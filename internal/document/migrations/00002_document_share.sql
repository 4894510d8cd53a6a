-- +goose Up
-- A share: the holder of a document lets someone else see it by giving them
-- the document's number and a one-time code. Only SHA-256(document id, code)
-- is stored; a share lapses at expires_at, after max_uses openings, or when
-- the holder revokes it.
CREATE TABLE document_share (
    id           uuid PRIMARY KEY,
    document_id  uuid NOT NULL REFERENCES document (id),
    code_hash    bytea NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    max_uses     integer NOT NULL CHECK (max_uses > 0),
    uses         integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX document_share_document ON document_share (document_id, created_at);

-- Wrong codes tried on a document: too many within an hour lock its
-- sharing for the rest of that hour (DocumentShareLocked).
CREATE TABLE document_share_failure (
    document_id uuid NOT NULL REFERENCES document (id),
    at          timestamptz NOT NULL
);
CREATE INDEX document_share_failure_document ON document_share_failure (document_id, at);

-- +goose Down
DROP TABLE document_share_failure;
DROP TABLE document_share;

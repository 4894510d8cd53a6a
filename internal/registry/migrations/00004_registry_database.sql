-- +goose Up
-- Every registry's stable number (the GovStack Database API's database id),
-- given when the registry is first installed and never reused: rows are
-- never deleted, an archived registry keeps its row and its number.
CREATE TABLE registry_database (
    id          bigint PRIMARY KEY CHECK (id > 0),
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    -- Archived: no new writes; reads and history go on.
    archived_at timestamptz,
    archived_by text,
    -- revision takes the next value of registry_database_revision on every
    -- change of the registry's definition or state: each node polls the
    -- maximum and reloads when it grows.
    revision    bigint NOT NULL
);
CREATE SEQUENCE registry_database_revision;
CREATE INDEX registry_database_by_revision ON registry_database (revision);

-- Who installed a definition version: "file" for the embedded files.
ALTER TABLE registry_definition ADD COLUMN installed_by text NOT NULL DEFAULT 'file';

-- +goose Down
ALTER TABLE registry_definition DROP COLUMN installed_by;
DROP TABLE registry_database;
DROP SEQUENCE registry_database_revision;

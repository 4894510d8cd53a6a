-- +goose Up
-- Registry definitions and classifiers, each version kept as written.
CREATE TABLE registry_definition (
    name        text NOT NULL,
    version     int  NOT NULL CHECK (version > 0),
    owner       text NOT NULL,
    source      text NOT NULL,
    definition  jsonb NOT NULL,
    installed_at timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE registry_classifier (
    name        text NOT NULL,
    version     int  NOT NULL CHECK (version > 0),
    source      text NOT NULL,
    installed_at timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

-- Every change of every record is a new row: who, when, why. Rows are never
-- updated or deleted (the trigger below refuses it).
CREATE TABLE registry_record_version (
    registry       text NOT NULL,
    key            text NOT NULL,
    version        int  NOT NULL CHECK (version > 0),
    op             text NOT NULL CHECK (op IN ('create', 'update', 'correct', 'cancel')),
    data           jsonb NOT NULL,
    valid_from     timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    actor          text NOT NULL CHECK (actor <> ''),
    basis          text NOT NULL DEFAULT '',
    application_id text NOT NULL DEFAULT '',
    reason         text NOT NULL DEFAULT '',
    def_version    int  NOT NULL,
    CHECK (basis <> '' OR application_id <> ''),
    PRIMARY KEY (registry, key, version)
);

-- +goose StatementBegin
CREATE FUNCTION registry_record_version_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'registry_record_version is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER registry_record_version_no_update BEFORE UPDATE OR DELETE ON registry_record_version
    FOR EACH ROW EXECUTE FUNCTION registry_record_version_append_only();
CREATE TRIGGER registry_record_version_no_truncate BEFORE TRUNCATE ON registry_record_version
    FOR EACH STATEMENT EXECUTE FUNCTION registry_record_version_append_only();

-- The current state of a record is its newest version: the primary key
-- finds it (ORDER BY version DESC LIMIT 1). Nothing is kept that would have
-- to be updated in place.

-- +goose Down
DROP TABLE registry_record_version;
DROP FUNCTION registry_record_version_append_only();
DROP TABLE registry_classifier;
DROP TABLE registry_definition;

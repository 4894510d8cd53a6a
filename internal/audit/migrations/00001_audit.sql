-- +goose Up
CREATE TABLE audit_event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    subject_iin text CHECK (subject_iin ~ '^[0-9]{12}$'),
    object      text NOT NULL DEFAULT '',
    purpose     text NOT NULL,
    request_id  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_event_subject ON audit_event (subject_iin, at) WHERE subject_iin IS NOT NULL;

-- The audit trail is append-only: no one may rewrite history through SQL.
-- +goose StatementBegin
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only';
END $$;
-- +goose StatementEnd
CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();

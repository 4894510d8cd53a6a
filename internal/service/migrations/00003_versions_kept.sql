-- +goose Up
-- Applications refer to the service version they started with, without a
-- foreign key (it locked these few rows for every submission, see process
-- migration 00007): a published version is never deleted or renumbered.
-- +goose StatementBegin
CREATE FUNCTION service_version_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.version <> OLD.version THEN
        RAISE EXCEPTION 'a published service version is never deleted or renumbered: applications refer to it'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER service_version_kept BEFORE UPDATE OR DELETE ON service
    FOR EACH ROW EXECUTE FUNCTION service_version_kept();

-- +goose Down
DROP TRIGGER service_version_kept ON service;
DROP FUNCTION service_version_kept();

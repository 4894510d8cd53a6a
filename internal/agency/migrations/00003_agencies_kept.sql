-- +goose Up
-- Documents name their issuing agency without a foreign key (it locked the
-- agency's row for every document issued, see document migration 00003):
-- an agency is never deleted or renamed.
-- +goose StatementBegin
CREATE FUNCTION agency_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'an agency is never deleted or renamed: documents and applications refer to it'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER agency_kept BEFORE UPDATE OR DELETE ON agency
    FOR EACH ROW EXECUTE FUNCTION agency_kept();

-- +goose Down
DROP TRIGGER agency_kept ON agency;
DROP FUNCTION agency_kept();

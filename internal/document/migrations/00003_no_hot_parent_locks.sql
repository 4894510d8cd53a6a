-- +goose Up
-- Every document's insert checked its foreign keys to the issuing agency
-- and to the signing key, taking FOR KEY SHARE on the same few rows for
-- every concurrent issue (multixacts and WAL lock records under load, see
-- docs/performance.md). Signing keys are retired, never deleted, and
-- agencies are never deleted (agency migration 00003): the triggers below
-- and there keep the references true without the checks.
ALTER TABLE document DROP CONSTRAINT IF EXISTS document_issuer_fkey;
ALTER TABLE document DROP CONSTRAINT IF EXISTS document_key_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION signing_key_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'signing keys are retired, never deleted or renamed: documents refer to them'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER signing_key_kept BEFORE UPDATE OR DELETE ON signing_key
    FOR EACH ROW EXECUTE FUNCTION signing_key_kept();

-- +goose Down
DROP TRIGGER signing_key_kept ON signing_key;
DROP FUNCTION signing_key_kept();
ALTER TABLE document ADD FOREIGN KEY (issuer) REFERENCES agency (id);
ALTER TABLE document ADD FOREIGN KEY (key_id) REFERENCES signing_key (id);

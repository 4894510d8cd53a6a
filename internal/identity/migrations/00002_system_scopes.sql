-- +goose Up
-- Organisations' systems may hold platform scopes (identity.SystemScopes),
-- e.g. a payment gateway confirming state fees; citizens hold no roles.
-- +goose StatementBegin
DO $$
DECLARE c text;
BEGIN
    SELECT conname INTO STRICT c FROM pg_constraint
    WHERE conrelid = 'access_token'::regclass AND pg_get_constraintdef(oid) LIKE '%cardinality(roles)%';
    EXECUTE format('ALTER TABLE access_token DROP CONSTRAINT %I', c);
END $$;
-- +goose StatementEnd
ALTER TABLE access_token ADD CONSTRAINT access_token_roles CHECK (kind <> 'citizen' OR cardinality(roles) = 0);

-- +goose Down
ALTER TABLE access_token DROP CONSTRAINT access_token_roles;
ALTER TABLE access_token ADD CONSTRAINT access_token_officer_roles CHECK (kind = 'officer' OR cardinality(roles) = 0);

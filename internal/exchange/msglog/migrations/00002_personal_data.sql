-- +goose Up
-- A personal-data call's subject, purpose, basis and refusal, which the
-- gateway ships to the centre for the citizen's access log.
ALTER TABLE gateway_msglog ADD COLUMN subject text NOT NULL DEFAULT '',
    ADD COLUMN purpose text NOT NULL DEFAULT '',
    ADD COLUMN basis text NOT NULL DEFAULT '',
    ADD COLUMN refused text NOT NULL DEFAULT '';
CREATE INDEX gateway_msglog_personal ON gateway_msglog (seq) WHERE subject <> '';

-- +goose Down
DROP INDEX gateway_msglog_personal;
ALTER TABLE gateway_msglog DROP COLUMN subject, DROP COLUMN purpose, DROP COLUMN basis, DROP COLUMN refused;

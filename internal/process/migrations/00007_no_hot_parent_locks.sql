-- +goose Up
-- Every application's insert checked its foreign key to the service
-- version, taking FOR KEY SHARE on one of a handful of rows that every
-- concurrent submission shares: shared row locks turn into multixacts
-- and WAL lock records under load (docs/performance.md). Service versions
-- are never deleted or renumbered (service migration 00003 refuses it), so
-- the reference holds without the check.
ALTER TABLE application DROP CONSTRAINT IF EXISTS application_service_id_service_version_fkey;

-- +goose Down
ALTER TABLE application ADD FOREIGN KEY (service_id, service_version) REFERENCES service (id, version);

-- +goose Up
-- The persons live in the declarative population and addresses registries
-- (registry_record_version, with history and audited reads); the first
-- issue's table held them a second time.
DROP TABLE population_person;


-- +goose Up
-- Declarative services keep their definition file; the engine runs its plan.
ALTER TABLE service ADD COLUMN source text NOT NULL DEFAULT '';
ALTER TABLE service ADD COLUMN refusals jsonb NOT NULL DEFAULT '{}';

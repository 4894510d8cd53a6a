-- +goose Up
-- The officer roles an agency assigns its staff; services name them in review steps.
ALTER TABLE agency ADD COLUMN roles text[] NOT NULL DEFAULT '{}';

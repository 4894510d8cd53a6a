-- +goose Up
CREATE TABLE agency (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,40}$'),
    bin        text NOT NULL UNIQUE CHECK (bin ~ '^[0-9]{12}$'),
    name       jsonb NOT NULL CHECK (name ? 'kk' AND name ? 'ru' AND name ? 'en'),
    created_at timestamptz NOT NULL DEFAULT now()
);

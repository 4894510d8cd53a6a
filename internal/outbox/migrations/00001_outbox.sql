-- +goose Up
CREATE TABLE outbox_event (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.]*$'),
    key        text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX outbox_event_topic ON outbox_event (topic, id);

-- +goose Up
-- The transaction that wrote each event, so that consumers can read events
-- in commit-safe order ((tx, id), only below the oldest running
-- transaction) instead of id order, which skips an event whose transaction
-- took its id early and committed late. Events written before this column
-- get 1, below every real transaction id: they are all committed already.
ALTER TABLE outbox_event ADD COLUMN tx xid8 NOT NULL DEFAULT '1'::xid8;
ALTER TABLE outbox_event ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX outbox_event_tx ON outbox_event (tx, id);

-- Each consumer's cursor: the (tx, id) of the last event it has passed.
CREATE TABLE outbox_consumer (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.-]*$'),
    tx         xid8 NOT NULL DEFAULT '0'::xid8,
    id         bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE outbox_consumer;
DROP INDEX outbox_event_tx;
ALTER TABLE outbox_event DROP COLUMN tx;

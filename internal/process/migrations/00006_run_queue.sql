-- +goose Up
-- The engine's own queue (Config.TableQueue): one row per application with
-- a run due; a worker takes it with SKIP LOCKED in the run's transaction
-- and deletes it in the same commit.
CREATE TABLE process_run (
    application_id  uuid PRIMARY KEY REFERENCES application (id),
    run_at          timestamptz NOT NULL,
    attempt         int NOT NULL DEFAULT 0,
    service_id      text NOT NULL,
    service_version int NOT NULL
);
CREATE INDEX process_run_due ON process_run (run_at);

-- +goose Down
DROP TABLE process_run;

-- +goose Up
-- Applications now pause: for an officer (in_review), for the citizen's
-- correction (returned) or for a time (waiting); citizens withdraw and
-- operators cancel.
ALTER TABLE application DROP CONSTRAINT application_status_check;
ALTER TABLE application ADD CONSTRAINT application_status_check CHECK (status IN
    ('submitted', 'in_review', 'returned', 'waiting', 'completed', 'refused', 'failed', 'withdrawn', 'cancelled'));
-- The result document is recorded when it is issued, which may be before a
-- later step pauses the application.
ALTER TABLE application DROP CONSTRAINT application_check;
ALTER TABLE application ADD CONSTRAINT application_completed_has_document CHECK (status <> 'completed' OR document_id IS NOT NULL);
-- Where the flow goes on (an index into the plan's steps; -1 is the end)
-- and the registry data it read, so that a resumed flow decides on the
-- same facts and does not read (and audit) them again.
ALTER TABLE application ADD COLUMN cursor integer NOT NULL DEFAULT 0;
ALTER TABLE application ADD COLUMN data jsonb;
ALTER TABLE application ADD COLUMN updated_at timestamptz;
CREATE INDEX application_unfinished ON application (status) WHERE decided_at IS NULL;

-- Officers' tasks: one per review step reached. At most one is open per
-- application.
CREATE TABLE task (
    id             uuid PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES application (id),
    step_id        text NOT NULL,
    step_index     integer NOT NULL,
    agency         text NOT NULL REFERENCES agency (id),
    role           text NOT NULL,
    escalate_to    text,
    status         text NOT NULL CHECK (status IN ('open', 'claimed', 'done', 'cancelled')),
    claimed_by     text,
    claimed_at     timestamptz,
    created_at     timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    escalated_at   timestamptz,
    decision       text CHECK (decision IN ('approve', 'refuse', 'return')),
    refusal_code   text,
    comment        text,
    decided_by     text,
    decided_at     timestamptz,
    CHECK ((status = 'claimed') = (claimed_by IS NOT NULL)),
    CHECK ((status = 'done') = (decision IS NOT NULL))
);
CREATE UNIQUE INDEX task_one_open_per_application ON task (application_id) WHERE status IN ('open', 'claimed');
CREATE INDEX task_inbox ON task (agency, role, due_at) WHERE status IN ('open', 'claimed');
CREATE INDEX task_by_application ON task (application_id);

-- Files an officer attaches to a decision.
CREATE TABLE task_attachment (
    id         uuid PRIMARY KEY,
    task_id    uuid NOT NULL REFERENCES task (id),
    name       text NOT NULL,
    media_type text NOT NULL,
    size       integer NOT NULL,
    sha256     bytea NOT NULL,
    content    bytea NOT NULL
);
CREATE INDEX task_attachment_by_task ON task_attachment (task_id);

-- Timers on the platform clock: resume a waiting application, or escalate
-- an officer's task whose deadline passed.
CREATE TABLE process_timer (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES application (id),
    kind           text NOT NULL CHECK (kind IN ('resume', 'task_deadline')),
    task_id        uuid REFERENCES task (id),
    due_at         timestamptz NOT NULL,
    CHECK ((kind = 'task_deadline') = (task_id IS NOT NULL))
);
CREATE INDEX process_timer_due ON process_timer (due_at);
CREATE INDEX process_timer_by_application ON process_timer (application_id);

-- +goose Up
-- The timeline moves into the application's row, as a JSON array appended
-- to by the statement that changes the application anyway: a run wrote
-- four or five step rows, each with two index entries and a foreign-key
-- check, which cost the database more than the rest of the run's writes
-- (docs/performance.md, session 6).
ALTER TABLE application ADD COLUMN timeline jsonb NOT NULL DEFAULT '[]';
UPDATE application a SET timeline = s.steps
FROM (SELECT application_id,
             jsonb_agg(jsonb_build_object('step', step, 'actor', actor, 'started_at', started_at, 'finished_at', finished_at,
                                          'outcome', outcome, 'attempt', attempt, 'detail', detail) ORDER BY id) AS steps
      FROM application_step GROUP BY application_id) s
WHERE a.id = s.application_id;
DROP TABLE application_step;

-- +goose Down
CREATE TABLE application_step (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES application (id),
    step           text NOT NULL,
    actor          text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    outcome        text NOT NULL,
    attempt        integer NOT NULL DEFAULT 1,
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX application_step_by_application ON application_step (application_id, id);
INSERT INTO application_step (application_id, step, actor, started_at, finished_at, outcome, attempt, detail)
SELECT a.id, s->>'step', s->>'actor', (s->>'started_at')::timestamptz, (s->>'finished_at')::timestamptz, s->>'outcome',
       (s->>'attempt')::integer, s->'detail'
FROM application a, jsonb_array_elements(a.timeline) WITH ORDINALITY AS t (s, n)
ORDER BY a.submitted_at, a.id, t.n;
ALTER TABLE application DROP COLUMN timeline;

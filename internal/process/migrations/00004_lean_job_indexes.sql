-- +goose Up
-- River's two GIN indexes (on a job's args and metadata) serve only queries
-- by JSON containment, which neither River's fetch, completion and
-- maintenance nor the engine make; yet every job row is written three times
-- (queued, running, completed), never in place since its state is indexed,
-- and each write rewrote both GIN indexes: about a fifth of the WAL of an
-- application (docs/performance.md). The engine tells River's reindexer to
-- leave them out (Config.ReindexerIndexNames).
DROP INDEX IF EXISTS river_job_args_index;
DROP INDEX IF EXISTS river_job_metadata_index;

-- +goose Down
CREATE INDEX IF NOT EXISTS river_job_args_index ON river_job USING GIN (args);
CREATE INDEX IF NOT EXISTS river_job_metadata_index ON river_job USING GIN (metadata);

-- +goose Up
-- The partial index on undecided applications turned every decision (which
-- sets decided_at) from an in-place (HOT) update into one that writes new
-- entries in all of the application's indexes, on the hot path of every
-- application; nothing reads through it that a scan of the few undecided
-- rows would not serve.
DROP INDEX application_unfinished;

-- +goose Down
CREATE INDEX application_unfinished ON application (status) WHERE decided_at IS NULL;

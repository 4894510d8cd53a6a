-- +goose Up
-- The consent feed (GET /api/v1/consents/feed): every change of a consent
-- is stamped with its transaction (xid8) and a sequence number, so that a
-- reader can follow changes in commit-safe (change_tx, change_seq) order
-- (see feed.go), and wakes waiting readers on other nodes (NOTIFY, sent at
-- commit).
CREATE SEQUENCE consent_change_seq;
ALTER TABLE consent ADD COLUMN change_tx xid8, ADD COLUMN change_seq bigint;

-- +goose StatementBegin
CREATE FUNCTION consent_feed_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_tx := pg_current_xact_id();
    NEW.change_seq := nextval('consent_change_seq');
    IF NEW.exchange_client IS NOT NULL THEN
        PERFORM pg_notify('consent_feed', '');
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER consent_feed_stamp BEFORE INSERT OR UPDATE ON consent
    FOR EACH ROW EXECUTE FUNCTION consent_feed_stamp();
UPDATE consent SET revision = revision; -- stamps the existing rows
CREATE INDEX consent_feed ON consent (change_tx, change_seq) WHERE exchange_client IS NOT NULL;

-- Access reports of exchange gateways (POST /api/v1/consents/access-reports):
-- one row per reported call, so that a report sent again records nothing.
CREATE TABLE consent_access_report (
    reporter    text NOT NULL, -- the gateway's system account
    message_id  text NOT NULL,
    side        text NOT NULL CHECK (side IN ('in', 'out')),
    received_at timestamptz NOT NULL,
    PRIMARY KEY (reporter, message_id, side)
);

-- +goose Down
DROP TABLE consent_access_report;
DROP TRIGGER consent_feed_stamp ON consent;
DROP FUNCTION consent_feed_stamp();
ALTER TABLE consent DROP COLUMN change_tx, DROP COLUMN change_seq;
DROP SEQUENCE consent_change_seq;

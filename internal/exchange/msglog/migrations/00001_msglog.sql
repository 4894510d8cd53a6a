-- +goose Up
CREATE TABLE gateway_msglog (
    seq           bigint PRIMARY KEY,
    at_us         bigint NOT NULL,
    direction     text NOT NULL,
    message_id    text NOT NULL,
    client        text NOT NULL,
    service       text NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    user_id       text NOT NULL,
    issue         text NOT NULL,
    request_hash  bytea,
    response_hash bytea,
    status        int NOT NULL,
    request_sig   bytea,
    response_sig  bytea,
    peer_serial   text NOT NULL,
    prev          bytea NOT NULL,
    hash          bytea NOT NULL
);
CREATE INDEX gateway_msglog_message ON gateway_msglog (client, message_id);

CREATE TABLE gateway_msglog_seal (
    upto      bigint PRIMARY KEY,
    hash      bytea NOT NULL,
    at_us     bigint NOT NULL,
    cert      bytea NOT NULL,
    signature bytea NOT NULL,
    -- the centre's timestamp of the seal (NULL when the centre was unreachable)
    ts_at_us  bigint,
    ts_sig    bytea
);

-- +goose Down
DROP TABLE gateway_msglog_seal, gateway_msglog;

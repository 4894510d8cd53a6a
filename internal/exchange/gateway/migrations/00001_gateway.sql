-- +goose Up
-- Operational monitoring: one row per exchange seen by this node.
CREATE TABLE gateway_opmon (
    id             bigserial PRIMARY KEY,
    direction      text NOT NULL,
    message_id     text NOT NULL,
    client         text NOT NULL,
    service        text NOT NULL,
    method         text NOT NULL,
    request_in_us  bigint NOT NULL,
    request_out_us bigint NOT NULL,
    response_in_us bigint NOT NULL,
    response_out_us bigint NOT NULL,
    request_size   bigint NOT NULL,
    response_size  bigint NOT NULL,
    status         int NOT NULL,
    error_type     text NOT NULL
);
CREATE INDEX gateway_opmon_time ON gateway_opmon (request_in_us);

-- +goose Down
DROP TABLE gateway_opmon;

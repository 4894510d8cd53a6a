-- +goose Up
-- How far the node has shipped its personal-data calls (message log
-- entries naming a subject) to the centre's access log: the sequence number
-- of the last entry the centre acknowledged.
CREATE TABLE gateway_access_cursor (
    id   int PRIMARY KEY CHECK (id = 1),
    upto bigint NOT NULL
);
INSERT INTO gateway_access_cursor (id, upto) VALUES (1, 0);

-- +goose Down
DROP TABLE gateway_access_cursor;

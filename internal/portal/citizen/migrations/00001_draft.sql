-- +goose Up
-- A citizen's unfinished form for a service: the values as entered (a
-- JSON object of lists of strings, as a form posts them), kept until they
-- apply or save again. One draft per citizen and service.
CREATE TABLE portal_draft (
    citizen_iin text NOT NULL CHECK (citizen_iin ~ '^[0-9]{12}$'),
    service_id  text NOT NULL,
    form_values jsonb NOT NULL,
    saved_at    timestamptz NOT NULL,
    PRIMARY KEY (citizen_iin, service_id)
);

-- +goose Down
DROP TABLE portal_draft;

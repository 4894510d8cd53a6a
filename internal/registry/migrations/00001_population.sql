-- +goose Up
CREATE TABLE population_person (
    iin         text PRIMARY KEY CHECK (iin ~ '^[0-9]{12}$'),
    last_name   text NOT NULL CHECK (last_name <> ''),
    first_name  text NOT NULL CHECK (first_name <> ''),
    patronymic  text NOT NULL DEFAULT '',
    birth_date  date NOT NULL,
    sex         text NOT NULL CHECK (sex IN ('male', 'female', 'unknown')),
    -- NULL: the person has no registered address.
    address     jsonb,
    updated_at  timestamptz NOT NULL
);

-- +goose Up
CREATE TABLE service (
    id              text NOT NULL CHECK (id ~ '^[a-z][a-z0-9-]{1,60}$'),
    version         integer NOT NULL CHECK (version > 0),
    owner_agency    text NOT NULL REFERENCES agency (id),
    audience        text NOT NULL CHECK (audience IN ('citizen', 'business')),
    category        text NOT NULL,
    flow            text NOT NULL,
    title           jsonb NOT NULL,
    description     jsonb NOT NULL,
    result          jsonb NOT NULL,
    target_seconds  integer NOT NULL CHECK (target_seconds > 0),
    legal_days      integer NOT NULL CHECK (legal_days > 0),
    fee_tiyn        bigint NOT NULL DEFAULT 0 CHECK (fee_tiyn >= 0),
    current         boolean NOT NULL DEFAULT false,
    published_at    timestamptz NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE UNIQUE INDEX service_one_current ON service (id) WHERE current;

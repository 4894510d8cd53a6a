-- +goose Up
-- Where a citizen wants messages: set by the citizen (PUT
-- /api/v1/notifications/contact); every read and write is audited.
CREATE TABLE notify_contact (
    iin        text PRIMARY KEY CHECK (iin ~ '^[0-9]{12}$'),
    phone      text CHECK (phone ~ '^\+7[0-9]{10}$'),
    email      text CHECK (length(email) BETWEEN 3 AND 254),
    language   text CHECK (language IN ('kk', 'ru', 'en')),
    updated_at timestamptz NOT NULL
);

-- One message per thing told, channel and recipient. dedup names what the
-- message tells ("event:<outbox id>", or for a returned application
-- "returned:<application>:<transaction>", which two events carry), so an
-- event delivered again makes no second message.
CREATE TABLE notify_message (
    id              uuid PRIMARY KEY,
    dedup           text NOT NULL,
    event_id        bigint NOT NULL,
    topic           text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('sms', 'email', 'inapp')),
    recipient       text NOT NULL,  -- citizen:<iin> or role:<agency>/<role>
    to_iin          text,
    agency          text,
    role            text,
    address         text,           -- the phone (sms) or e-mail (email) when the message was made
    language        text NOT NULL,  -- of subject and body: kk, ru, en, or kk,ru
    subject         text NOT NULL,
    body            text NOT NULL,
    title           jsonb NOT NULL, -- {kk, ru, en}: the in-app inbox shows the reader's language
    text            jsonb NOT NULL,
    application_id  text,
    status          text NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    UNIQUE (dedup, channel, recipient),
    CHECK ((channel = 'inapp') = (address IS NULL)),
    CHECK ((to_iin IS NULL) = (role IS NOT NULL))
);
CREATE INDEX notify_message_due ON notify_message (next_attempt_at) WHERE status = 'queued';
CREATE INDEX notify_message_inbox ON notify_message (to_iin, created_at DESC, id DESC) WHERE channel = 'inapp';
CREATE INDEX notify_message_role_inbox ON notify_message (agency, role, created_at DESC, id DESC) WHERE channel = 'inapp' AND role IS NOT NULL;

-- What the development adapters of sms and email delivered: the stand-in
-- for the SMS centre and the mail server (ortaq notify outbox reads it).
CREATE TABLE notify_dev_outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id uuid NOT NULL UNIQUE,
    channel    text NOT NULL,
    address    text NOT NULL,
    to_iin     text,
    language   text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    sent_at    timestamptz NOT NULL
);

-- +goose Down
DROP TABLE notify_dev_outbox;
DROP TABLE notify_message;
DROP TABLE notify_contact;

-- +goose Up
-- Applications now also pause for the applicant: to pay a state fee
-- (awaiting_payment) or to sign the application (awaiting_signature).
ALTER TABLE application DROP CONSTRAINT application_status_check;
ALTER TABLE application ADD CONSTRAINT application_status_check CHECK (status IN
    ('submitted', 'in_review', 'returned', 'waiting', 'awaiting_payment', 'awaiting_signature',
     'completed', 'refused', 'failed', 'withdrawn', 'cancelled'));

-- The applicant's deadline to pay or sign; when it passes unmet, the
-- application is refused with the step's refusal.
ALTER TABLE process_timer DROP CONSTRAINT process_timer_kind_check;
ALTER TABLE process_timer ADD CONSTRAINT process_timer_kind_check CHECK (kind IN ('resume', 'task_deadline', 'applicant_deadline'));
-- An applicant's deadline carries the step it is for and the refusal it
-- gives, so that firing it needs no service definition.
ALTER TABLE process_timer ADD COLUMN step text;
ALTER TABLE process_timer ADD COLUMN refusal text;
ALTER TABLE process_timer ADD CONSTRAINT process_timer_applicant_deadline
    CHECK ((kind = 'applicant_deadline') = (step IS NOT NULL AND refusal IS NOT NULL));

-- A state fee to pay: one per application and fee step. The amount is
-- fixed in tiyn when the invoice is made (an amount in MRP at that day's
-- value). A payment gateway confirms it with its own reference, once.
CREATE TABLE invoice (
    id             uuid PRIMARY KEY,
    number         text NOT NULL UNIQUE,
    application_id uuid NOT NULL REFERENCES application (id),
    step           text NOT NULL,
    amount_tiyn    bigint NOT NULL CHECK (amount_tiyn > 0),
    declared       text NOT NULL,              -- the amount as the service declares it, e.g. "0.5 MRP"
    payee          text NOT NULL,              -- the agency the fee goes to
    status         text NOT NULL CHECK (status IN ('open', 'paid', 'expired', 'cancelled')),
    created_at     timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    paid_at        timestamptz,
    reference      text UNIQUE,                -- the payment gateway's id of the payment
    confirmed_by   text,                       -- the system that confirmed it
    UNIQUE (application_id, step),
    CHECK ((status = 'paid') = (reference IS NOT NULL AND paid_at IS NOT NULL AND confirmed_by IS NOT NULL))
);

-- What the applicant is asked to sign (exact bytes, fixed when asked) and,
-- once signed, the signature and who the verified certificate says signed.
-- A correction of the application supersedes its signatures: the corrected
-- application is signed again, and the earlier signature stays on record.
CREATE TABLE application_signature (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES application (id),
    step           text NOT NULL,
    data           bytea NOT NULL,
    requested_at   timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    signature      jsonb,
    signer         jsonb,
    signed_at      timestamptz,
    superseded_at  timestamptz,
    CHECK ((signature IS NULL) = (signed_at IS NULL) AND (signature IS NULL) = (signer IS NULL))
);
CREATE UNIQUE INDEX application_signature_current ON application_signature (application_id, step) WHERE superseded_at IS NULL;

-- What officers record when approving review steps with outputs, by step
-- id; later steps and rules read it as review.<step>.<field>.
ALTER TABLE application ADD COLUMN review jsonb;

-- +goose Down
ALTER TABLE application DROP COLUMN review;
DROP TABLE application_signature;
DROP TABLE invoice;
ALTER TABLE process_timer DROP CONSTRAINT process_timer_applicant_deadline;
ALTER TABLE process_timer DROP COLUMN refusal;
ALTER TABLE process_timer DROP COLUMN step;
ALTER TABLE process_timer DROP CONSTRAINT process_timer_kind_check;
ALTER TABLE process_timer ADD CONSTRAINT process_timer_kind_check CHECK (kind IN ('resume', 'task_deadline'));
ALTER TABLE application DROP CONSTRAINT application_status_check;
ALTER TABLE application ADD CONSTRAINT application_status_check CHECK (status IN
    ('submitted', 'in_review', 'returned', 'waiting', 'completed', 'refused', 'failed', 'withdrawn', 'cancelled'));

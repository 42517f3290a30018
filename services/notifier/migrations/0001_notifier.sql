-- The projection of each client's contact details, from auth.client.* events. Each field keeps
-- the time of the event that set it, so an older event arriving late changes nothing.
CREATE TABLE clients (
    client_number     text PRIMARY KEY,
    name              text,
    email             text,
    language          text,
    name_as_of        timestamptz NOT NULL DEFAULT '-infinity',
    email_as_of       timestamptz NOT NULL DEFAULT '-infinity',
    language_as_of    timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE INDEX clients_email ON clients (lower(email));

-- One row per email to send, keyed by the event that asked for it: the record of every attempt.
-- status: pending (to try), sending (an attempt started; if it stays so, the process died
-- during it), sent, dead.
CREATE TABLE emails (
    event_id        uuid PRIMARY KEY,
    kind            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    recipient       text,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    sent_at         timestamptz
);

-- Messages an admin can list and replay: emails that failed for good, and whatever RabbitMQ
-- dead-lettered from notifier.events (poison, over the delivery limit).
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    event_id       uuid NOT NULL,
    event_type     text NOT NULL,
    body           bytea NOT NULL,
    correlation_id text,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz
);
-- At most one waiting dead letter per event: the same failure recorded twice (by the notifier
-- and again when it drains the dead-letter queue) is one entry.
CREATE UNIQUE INDEX dead_letters_waiting ON dead_letters (event_id) WHERE replayed_at IS NULL;

-- Every inbound message, by its headers only (its content is never kept nor applied).
CREATE TABLE inbound_messages (
    id             bigserial PRIMARY KEY,
    mail_from      text NOT NULL,
    ticket_number  bigint,
    message_id     text,
    subject        text,
    size           integer NOT NULL,
    answered       boolean NOT NULL,
    reason         text NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- RFC 3834 §2: the last automatic answer per sender and ticket (0: mail naming no ticket).
CREATE TABLE auto_replies (
    sender         text NOT NULL,
    ticket_number  bigint NOT NULL,
    sent_at        timestamptz NOT NULL,
    PRIMARY KEY (sender, ticket_number)
);

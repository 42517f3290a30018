-- Full-text search over messages: Spanish stemming with accents folded, so "facturacion" finds
-- "Facturación". unaccent is a trusted extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION helpdesk_es (COPY = pg_catalog.spanish);
ALTER TEXT SEARCH CONFIGURATION helpdesk_es
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, spanish_stem;

CREATE TABLE categories (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX categories_name ON categories (lower(name));

-- The local projection of each client's services, from auth.client.* events: tickets can be
-- opened while auth is down.
CREATE TABLE client_services (
    service_id     bigint PRIMARY KEY,
    client_number  text NOT NULL,
    name           text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_services_client ON client_services (client_number);
-- When each client's list of services was last replaced (the event's time): an older event that
-- arrives late (say, replayed from the dead letters) must not undo a newer one.
CREATE TABLE client_services_versions (
    client_number  text PRIMARY KEY,
    as_of          timestamptz NOT NULL
);

-- Ticket numbers are read out over the phone: small positive integers, increasing.
CREATE SEQUENCE ticket_number_seq;

CREATE TABLE tickets (
    number          bigint PRIMARY KEY DEFAULT nextval('ticket_number_seq'),
    client_number   text NOT NULL,
    service_id      bigint NOT NULL,
    service_name    text NOT NULL,
    category_id     bigint NOT NULL REFERENCES categories,
    subject         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('open', 'answered', 'customer_reply', 'closed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Since when the client has been waiting for an answer (NULL while it is not their turn):
    -- the operator queue shows the longest wait first.
    waiting_since   timestamptz,
    excerpt         text NOT NULL
);
ALTER SEQUENCE ticket_number_seq OWNED BY tickets.number;

-- A client's list, newest activity first (with or without a status filter).
CREATE INDEX tickets_client_activity ON tickets (client_number, updated_at DESC, number DESC);
-- The operator's list of everything, newest activity first.
CREATE INDEX tickets_activity ON tickets (updated_at DESC, number DESC);
-- The operator's list filtered by status.
CREATE INDEX tickets_status_activity ON tickets (status, updated_at DESC, number DESC);
-- The operator queue: tickets waiting for an answer, the longest wait first.
CREATE INDEX tickets_waiting ON tickets (waiting_since, number) WHERE waiting_since IS NOT NULL;
-- The duplicate guard: a client's tickets that are not closed, by service and category.
CREATE INDEX tickets_not_closed ON tickets (client_number, service_id, category_id)
    WHERE status <> 'closed';

CREATE TABLE messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_number bigint NOT NULL REFERENCES tickets,
    author_kind   text NOT NULL CHECK (author_kind IN ('client', 'operator')),
    author_sub    text NOT NULL,
    author_name   text NOT NULL,
    body          text NOT NULL,
    channel       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    search        tsvector GENERATED ALWAYS AS (to_tsvector('helpdesk_es', body)) STORED
);
CREATE INDEX messages_ticket ON messages (ticket_number, id);
CREATE INDEX messages_search ON messages USING gin (search);

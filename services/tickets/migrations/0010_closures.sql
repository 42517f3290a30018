-- Each time a ticket was closed, by whom: the conversation shows "Cerrado por Olga, 17:36" where
-- it happened (a reopened ticket keeps the lines of its earlier closings).
CREATE TABLE closures (
    id             bigserial PRIMARY KEY,
    ticket_number  bigint NOT NULL REFERENCES tickets (number),
    closed_by      text NOT NULL CHECK (closed_by IN ('client', 'operator', 'system')),
    closed_by_name text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX closures_ticket ON closures (ticket_number, id);

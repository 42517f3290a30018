-- SPEC 9.2: internal notes, assignment, and the ticket's summary.

-- The operators tickets may assign tickets to, as auth announces them (auth.operator.changed,
-- each the operator's whole state). `as_of` is the time of the event applied: an older event
-- arriving late must not undo a newer one. A row made from an operator's own token, when they
-- assign a ticket to themselves before their event arrived, is as of -infinity: any event wins.
CREATE TABLE operators (
    id        bigint PRIMARY KEY,
    name      text NOT NULL,
    role      text NOT NULL CHECK (role IN ('operator', 'admin')),
    disabled  boolean NOT NULL,
    as_of     timestamptz NOT NULL
);

-- Operator-only data (DESIGN: one visibility rule): shown to operators, never to the client.
CREATE TABLE notes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_number bigint NOT NULL REFERENCES tickets,
    author_sub    text NOT NULL,
    author_name   text NOT NULL,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notes_ticket ON notes (ticket_number, id);

ALTER TABLE tickets ADD COLUMN assignee_id bigint REFERENCES operators;
-- The operator queue and list filtered by assignee ("Mis tickets", an operator's): without
-- these, a rarely assigned operator's page would scan the whole queue. `assignee=none` (most
-- tickets) is served by tickets_waiting and tickets_activity.
CREATE INDEX tickets_assignee_waiting ON tickets (assignee_id, waiting_since, number)
    WHERE waiting_since IS NOT NULL;
CREATE INDEX tickets_assignee_activity ON tickets (assignee_id, updated_at DESC, number DESC)
    WHERE assignee_id IS NOT NULL;

-- The first words of the client's first message (lifecycle.summary), for email subjects. The
-- default keeps rows written by older code valid; existing tickets are filled below with the
-- same rule in SQL: whitespace runs become one space, at most 60 characters cut at the last
-- space before them, then "…".
ALTER TABLE tickets ADD COLUMN summary text NOT NULL DEFAULT '';
UPDATE tickets t SET summary = coalesce((
    SELECT CASE
        WHEN length(f.flat) <= 60 THEN f.flat
        WHEN position(' ' IN left(f.flat, 61)) > 0
            THEN substring(left(f.flat, 61) FROM '^(.*) ') || '…'
        ELSE left(f.flat, 60) || '…'
    END
    FROM (
        SELECT btrim(regexp_replace(m.body, '\s+', ' ', 'g')) AS flat
        FROM messages m WHERE m.ticket_number = t.number ORDER BY m.id LIMIT 1
    ) f
), '');

-- Canned replies, category rename/disable and auto-close (SPEC 9.2).

-- A disabled category is no longer offered for new tickets; its tickets keep it.
ALTER TABLE categories ADD COLUMN disabled boolean NOT NULL DEFAULT false;

-- Texts an operator inserts into a reply; titles are unique in any case, like category names.
CREATE TABLE canned_replies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX canned_replies_title ON canned_replies (lower(title));

-- Auto-close counts from the last operator reply, not from any update (a note or an assignment
-- touches updated_at without giving the client anything to answer).
ALTER TABLE tickets ADD COLUMN last_operator_reply_at timestamptz;
UPDATE tickets t SET last_operator_reply_at = m.last_reply
FROM (
    SELECT ticket_number, max(created_at) AS last_reply FROM messages
    WHERE author_kind = 'operator'
    GROUP BY ticket_number
) m
WHERE m.ticket_number = t.number;

-- The auto-close task's candidates: answered tickets, the longest unanswered by the client first.
-- Small, since most tickets end closed.
CREATE INDEX tickets_auto_close ON tickets (last_operator_reply_at, number)
    WHERE status = 'answered';

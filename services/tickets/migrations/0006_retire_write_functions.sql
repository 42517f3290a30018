-- A new ticket and a reply are written by services/tickets/desk.py, in Python, like every other
-- write: the functions of migrations 0004 and 0005 are no longer called.
DROP FUNCTION IF EXISTS open_ticket(
    text, bigint, bigint, text, text, text, text, text, boolean, uuid, text, jsonb, text
);
DROP FUNCTION IF EXISTS add_reply(
    bigint, text, text, text, text, text, text, text, jsonb, text[], uuid, text, text, jsonb, text
);

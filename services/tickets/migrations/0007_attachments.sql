-- Files uploaded by clients and operators (SPEC 9.2), kept in PostgreSQL in rows of at most
-- 256 KiB (services/tickets/attachments.py: CHUNK_BYTES), so that neither an upload nor a
-- download ever holds a whole file in memory. An upload is first an unused file of its owner;
-- a new ticket, a reply or a reopening then attaches it to its message, once.
CREATE TABLE attachments (
    id             uuid        PRIMARY KEY,          -- random (uuid4): ids are not guessable
    owner_sub      text        NOT NULL,             -- the uploader's `sub`; only they attach it
    name           text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    -- Both null while the upload is still being received; an incomplete file is never attached
    -- and is deleted when its upload fails (or by the purge, if its process died).
    size           bigint      CHECK (size >= 0),
    content_type   text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Set together when a message takes the file: its ticket is kept here too, so that a
    -- download (which names the ticket) is checked with this one row.
    message_id     bigint      REFERENCES messages,
    ticket_number  bigint      REFERENCES tickets,
    position       smallint,                         -- the file's place among its message's
    CHECK ((size IS NULL) = (content_type IS NULL)),
    CHECK ((message_id IS NULL) = (ticket_number IS NULL)),
    CHECK (message_id IS NULL OR size IS NOT NULL)
);
-- A ticket's files, for its page (GET /v1/tickets/{n}).
CREATE INDEX attachments_ticket ON attachments (ticket_number, message_id, position)
    WHERE ticket_number IS NOT NULL;
-- The purge of uploads never used (oldest first).
CREATE INDEX attachments_unused ON attachments (created_at) WHERE message_id IS NULL;

CREATE TABLE attachment_chunks (
    attachment_id  uuid    NOT NULL REFERENCES attachments ON DELETE CASCADE,
    seq            integer NOT NULL CHECK (seq >= 0),
    data           bytea   NOT NULL,
    PRIMARY KEY (attachment_id, seq)
);
-- Already compressed (images, PDF, archives) or small: TOAST compression would cost CPU for
-- little, and EXTERNAL keeps the bytes out of line without trying.
ALTER TABLE attachment_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

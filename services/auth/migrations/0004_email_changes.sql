-- A client's request to change the primary email (SPEC 9.1): the one-time token that confirms
-- it, stored hashed, with the address it will set.
CREATE TABLE email_changes (
    token_hash     bytea PRIMARY KEY,
    client_number  bigint NOT NULL REFERENCES clients ON DELETE CASCADE,
    new_email      text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX email_changes_client ON email_changes (client_number);

-- The SMTP client (its IP address; for IPv6 its /64) each inbound message came from: automatic
-- answers are capped per client address and hour (SPEC §9.3), counted from these rows.
ALTER TABLE inbound_messages ADD COLUMN client_address text;
CREATE INDEX inbound_messages_answered_by_client
    ON inbound_messages (client_address, received_at) WHERE answered;

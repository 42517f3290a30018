-- Delivery status (SPEC 9.3): operators list the emails about a ticket. Each email keeps the
-- ticket it is about (null for mail about no ticket) and when its state last changed. Rows from
-- before this migration have no ticket: their events are gone, and they are not listed.
ALTER TABLE emails ADD COLUMN ticket_number bigint;
ALTER TABLE emails ADD COLUMN updated_at timestamptz;
UPDATE emails SET updated_at = greatest(created_at, last_attempt_at, sent_at);
ALTER TABLE emails ALTER COLUMN updated_at SET DEFAULT now();
ALTER TABLE emails ALTER COLUMN updated_at SET NOT NULL;
CREATE INDEX emails_by_ticket ON emails (ticket_number, created_at) WHERE ticket_number IS NOT NULL;

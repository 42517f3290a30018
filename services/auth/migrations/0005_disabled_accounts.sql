-- SPEC 9.1: an admin disables a client or an operator; a disabled account cannot log in or
-- refresh. Kept as a flag, not a deletion: its tickets and history stay.
ALTER TABLE clients ADD COLUMN disabled boolean NOT NULL DEFAULT false;
ALTER TABLE operators ADD COLUMN disabled boolean NOT NULL DEFAULT false;

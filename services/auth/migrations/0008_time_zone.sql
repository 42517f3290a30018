-- The time zone the panel shows an account's dates in (an IANA name; NULL: the panel's default).
ALTER TABLE clients ADD COLUMN time_zone text;
ALTER TABLE operators ADD COLUMN time_zone text;

-- The login throttle counts failures per username *and client address* (SPEC 9.1): one
-- address cannot lock a client out everywhere, and one address cannot spray many usernames.
ALTER TABLE login_failures ADD COLUMN address text NOT NULL DEFAULT '';
CREATE INDEX login_failures_address ON login_failures (address, failed_at);
-- Old failures are deleted by age, across usernames.
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);

-- A login attempt is counted before its password is checked (so that guesses sent at once cannot
-- pass the throttle), and settled once the check failed. The limit on usernames per address
-- counts settled failures only: right passwords of many users behind one address, checked at
-- the same moment, must not look like a spray.
ALTER TABLE login_failures ADD COLUMN settled boolean NOT NULL DEFAULT true;

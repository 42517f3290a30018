-- Access and refresh tokens are kept sealed with a key derived from the session's cookie token
-- (services/panel/sessions.py), and anonymous visitors are no longer stored. Sessions of the
-- old shape cannot be converted (the key was never kept): their visitors log in again.
DELETE FROM sessions;
ALTER TABLE sessions
    ALTER COLUMN access_token TYPE bytea USING NULL,
    ALTER COLUMN refresh_token TYPE bytea USING NULL,
    ALTER COLUMN kind SET NOT NULL;

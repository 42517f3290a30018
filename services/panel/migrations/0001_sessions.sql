-- Secrets the panel generates for itself when none is configured (the cookie signing key).
CREATE TABLE panel_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Server-side sessions. The cookie carries a random token; only its SHA-256 is stored, so the
-- table alone does not let anyone take over a session. Anonymous visitors get a session too:
-- it carries their language and the CSRF token of the login and recovery forms.
CREATE TABLE sessions (
    id               text PRIMARY KEY,
    csrf_token       text NOT NULL,
    language         text,
    kind             text CHECK (kind IN ('client', 'operator')),
    name             text,
    client_number    text,
    access_token     text,
    refresh_token    text,
    access_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);

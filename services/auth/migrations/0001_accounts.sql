-- Client numbers are what people read out over the phone: digits only, from 100001 upwards.
CREATE SEQUENCE client_number_seq START WITH 100001;

CREATE TABLE clients (
    client_number  bigint PRIMARY KEY DEFAULT nextval('client_number_seq'),
    name           text NOT NULL,
    email          text NOT NULL,
    language       text NOT NULL DEFAULT 'es' CHECK (language IN ('es', 'en')),
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE client_number_seq OWNED BY clients.client_number;
-- Several accounts may share a primary email (recovery answers for each of them).
CREATE INDEX clients_email ON clients (lower(email));

CREATE TABLE client_services (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_number  bigint NOT NULL REFERENCES clients ON DELETE CASCADE,
    name           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_services_client ON client_services (client_number, id);

CREATE TABLE operators (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('operator', 'admin')),
    language       text NOT NULL DEFAULT 'es' CHECK (language IN ('es', 'en')),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX operators_email ON operators (lower(email));

-- Rotating refresh tokens, stored hashed. A family is one login; reusing a spent token
-- revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash   bytea PRIMARY KEY,
    family_id    uuid NOT NULL,
    subject      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject);

-- One-time tokens to set (welcome) or reset (recovery) a client's password, stored hashed.
CREATE TABLE password_tokens (
    token_hash     bytea PRIMARY KEY,
    client_number  bigint NOT NULL REFERENCES clients ON DELETE CASCADE,
    purpose        text NOT NULL CHECK (purpose IN ('welcome', 'reset')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz
);
CREATE INDEX password_tokens_client ON password_tokens (client_number);

-- Failed logins per username, for throttling; old rows are pruned as logins come in.
CREATE TABLE login_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username    text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username ON login_failures (username, failed_at);

-- Token signing keys. The newest unretired key signs; every key not yet expired verifies, so
-- after a rotation tokens signed by the old key keep working until they expire.
CREATE TABLE signing_keys (
    kid           text PRIMARY KEY,
    private_pem   text NOT NULL,
    public_jwk    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz
);

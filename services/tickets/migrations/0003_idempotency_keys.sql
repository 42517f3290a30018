-- A write sent with an Idempotency-Key is done once: the key is claimed in the write's own
-- transaction, with the request's fingerprint and the response, so a repeat of the request (a
-- retry after a timeout, a form sent twice) gets the same answer and writes nothing.
CREATE TABLE idempotency_keys (
    principal    text        NOT NULL,  -- the caller's `sub`: keys of different callers never meet
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,  -- sha256 of method, path and the validated body
    response     text,                  -- the response body (JSON), set before the commit
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

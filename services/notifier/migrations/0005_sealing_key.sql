-- Secrets the notifier generates for itself when none is configured: the private key that
-- opens the one-time tokens auth seals for it (NOTIFIER_SEALING_KEY takes its place).
CREATE TABLE notifier_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

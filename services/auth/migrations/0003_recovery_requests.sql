-- A password-recovery request is answered after this one insert, whether or not the email is
-- known (so its timing tells nothing); the links are made from it in the background.
CREATE TABLE recovery_requests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

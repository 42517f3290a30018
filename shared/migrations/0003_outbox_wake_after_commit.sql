-- The relay is woken after the commit (shared/outbox.py, OutboxRelay.committed), not by a NOTIFY
-- in the writing transaction: PostgreSQL serialises the commits of transactions that NOTIFY.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();

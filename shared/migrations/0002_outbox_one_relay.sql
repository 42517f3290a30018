-- One relay per database now publishes (it holds an advisory lock) and reads the unsent rows in
-- id order: the index that let several relays check each other's aggregates is not used any more,
-- and every insert paid for it.
DROP INDEX IF EXISTS outbox_unsent_aggregate;

-- An attempt to send an email holds a lease, committed before the relay is spoken to: another
-- delivery of the same event leaves it alone until the lease ends (then the attempt is taken to
-- have been interrupted). It replaces a session advisory lock held on a pooled connection for
-- as long as the relay took.
ALTER TABLE emails ADD COLUMN lease_until timestamptz;

-- pgbench: the SQL of POST /v1/tickets (services/tickets/desk.open_ticket, with allow_duplicate
-- true), statement for statement as services/tickets/store.py and shared/outbox.py send it, run
-- directly: the ceiling of ticket creation.
--   pgbench -n -M prepared -c N -f bench/create_ticket.sql -D cbase=100001 -D sbase=1 -D cat=3
-- Client `client_id` (0..N-1) of pgbench is client number cbase + client_id owning service
-- sbase + client_id, as worker i of the load generator is (bench/suite.py checks it). The
-- tickets services are stopped meanwhile, so that no relay publishes these rows (bench/api_writes.py
-- marks them sent afterwards).
\set client :cbase + :client_id
\set sid :sbase + :client_id
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('tickets:' || :client::text));
SELECT
    (SELECT s.name FROM client_services s
     WHERE s.service_id = :sid AND s.client_number = :client::text) AS service_name,
    (SELECT c.name FROM categories c WHERE c.id = :cat) AS category_name,
    (SELECT t.number FROM tickets t
     WHERE t.client_number = :client::text AND t.service_id = :sid AND t.category_id = :cat
       AND t.status <> 'closed'
     ORDER BY t.number LIMIT 1) AS open_ticket;
WITH t AS (
    INSERT INTO tickets (client_number, service_id, service_name, category_id, subject,
                         status, waiting_since, excerpt, summary)
    VALUES (:client::text, :sid, 'Bench service', :cat, 'Bench category', 'open', now(),
            'Bench ticket: the site answers slowly since this morning.',
            'Bench ticket: the site answers slowly since this morning.')
    RETURNING number, created_at, updated_at
), m AS (
    INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body, channel)
    SELECT number, 'client', 'client:' || :client::text, 'Bench client',
           'Bench ticket: the site answers slowly since this morning.', 'api' FROM t
    RETURNING id, created_at
)
SELECT t.number, t.created_at, t.updated_at, m.id AS message_id, m.created_at AS message_created_at
FROM t, m;
INSERT INTO outbox (event_id, routing_key, aggregate, payload, correlation_id)
VALUES (gen_random_uuid(), 'tickets.ticket.created', 'ticket:' || currval('ticket_number_seq'),
        jsonb_build_object('id', gen_random_uuid(), 'type', 'tickets.ticket.created',
            'version', 1, 'occurred_at', now(), 'data', jsonb_build_object(
            'number', currval('ticket_number_seq'), 'client_number', :client::text,
            'subject', 'Bench category',
            'service', jsonb_build_object('id', :sid::int, 'name', 'Bench service'),
            'body', 'Bench ticket: the site answers slowly since this morning.')),
        md5(random()::text));
COMMIT;

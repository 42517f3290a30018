-- pgbench: the transaction of POST /v1/tickets (services/tickets/desk.open_ticket with
-- allow_duplicate true, store.py's SQL), run directly: the ceiling of ticket creation.
--   pgbench -n -M prepared -c N -f bench/create_ticket.sql -D cbase=100001 -D sbase=1 -D cat=3
-- Client `client_id` (0..N-1) of pgbench is client number cbase + client_id owning service
-- sbase + client_id, as worker i of the load generator is (bench/__main__.py checks it).
-- One difference: the outbox row is stored as already sent, so that the tickets services running
-- beside pgbench do not publish these bench rows (the NOTIFY trigger still fires).
\set client :cbase + :client_id
\set sid :sbase + :client_id
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('tickets:' || :client::text)),
       (SELECT name FROM client_services WHERE service_id = :sid AND client_number = :client::text) AS service_name,
       (SELECT name FROM categories WHERE id = :cat) AS category_name,
       nextval('ticket_number_seq') AS number \gset
WITH duplicate AS (
    SELECT number FROM tickets
    WHERE false AND client_number = :client::text AND service_id = :sid AND category_id = :cat
      AND status <> 'closed'
    ORDER BY number LIMIT 1
), t AS (
    INSERT INTO tickets AS t (number, client_number, service_id, service_name, category_id,
                              subject, status, waiting_since, excerpt)
    SELECT :number, :client::text, :sid, 'Hosting bench', :cat, 'Hosting / sitio web', 'open', now(),
           'Bench ticket: the site answers slowly since this morning.'
    WHERE NOT EXISTS (SELECT FROM duplicate)
    RETURNING t.number, t.client_number, t.service_id, t.service_name, t.category_id, t.subject,
              t.status, t.created_at, t.updated_at, t.excerpt, t.waiting_since
), m AS (
    INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body, channel)
    SELECT t.number, 'client', 'client:' || :client::text, 'Bench client',
           'Bench ticket: the site answers slowly since this morning.', 'api' FROM t
    RETURNING id, created_at
), o AS (
    INSERT INTO outbox (event_id, routing_key, aggregate, payload, correlation_id, sent_at)
    SELECT gen_random_uuid(), 'tickets.ticket.created', 'ticket:' || :number::bigint,
           jsonb_build_object('id', gen_random_uuid(), 'type', 'tickets.ticket.created', 'version', 1,
               'occurred_at', now(), 'data', jsonb_build_object('number', :number::bigint, 'client_number', :client::text,
               'subject', 'Hosting / sitio web', 'service', jsonb_build_object('id', :sid::bigint, 'name', 'Hosting bench'),
               'body', 'Bench ticket: the site answers slowly since this morning.')),
           md5(random()::text), now()
    FROM t
)
SELECT (SELECT number FROM duplicate) AS duplicate, t.*, m.id AS message_id, m.created_at AS message_created_at
FROM (SELECT) AS one LEFT JOIN t ON true LEFT JOIN m ON true;
END;

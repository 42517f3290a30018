-- pgbench: the SQL of POST /v1/tickets (services/tickets/desk.open_ticket with allow_duplicate
-- true: store.py's two statements, the second the function open_ticket), run directly: the
-- ceiling of ticket creation.
--   pgbench -n -M prepared -c N -f bench/create_ticket.sql -D cbase=100001 -D sbase=1 -D cat=3
-- Client `client_id` (0..N-1) of pgbench is client number cbase + client_id owning service
-- sbase + client_id, as worker i of the load generator is (bench/__main__.py checks it). The
-- tickets services are stopped meanwhile, so that no relay publishes these rows (bench/__main__.py
-- marks them sent afterwards).
\set client :cbase + :client_id
\set sid :sbase + :client_id
SELECT (SELECT name FROM client_services
        WHERE service_id = :sid AND client_number = :client::text) AS service_name,
       (SELECT name FROM categories WHERE id = :cat) AS category_name,
       nextval('ticket_number_seq') AS number \gset
SELECT * FROM open_ticket(
    :number, :client::text, :sid, :service_name::text, :cat, :category_name::text,
    'Bench ticket: the site answers slowly since this morning.',
    'client:' || :client::text, 'Bench client',
    'Bench ticket: the site answers slowly since this morning.', 'api', false,
    gen_random_uuid(), 'tickets.ticket.created', 'ticket:' || :number::bigint,
    jsonb_build_object('id', gen_random_uuid(), 'type', 'tickets.ticket.created', 'version', 1,
        'occurred_at', now(), 'data', jsonb_build_object('number', :number::bigint,
        'client_number', :client::text, 'subject', :category_name::text,
        'service', jsonb_build_object('id', :sid::bigint, 'name', :service_name::text),
        'body', 'Bench ticket: the site answers slowly since this morning.')),
    md5(random()::text));

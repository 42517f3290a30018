-- pgbench: the SQL of POST /v1/tickets (services/tickets/desk.open_ticket with allow_duplicate
-- true: store.create_ticket, the function open_ticket), run directly: the ceiling of ticket
-- creation.
--   pgbench -n -M prepared -c N -f bench/create_ticket.sql -D cbase=100001 -D sbase=1 -D cat=3
-- Client `client_id` (0..N-1) of pgbench is client number cbase + client_id owning service
-- sbase + client_id, as worker i of the load generator is (bench/__main__.py checks it). The
-- tickets services are stopped meanwhile, so that no relay publishes these rows (bench/__main__.py
-- marks them sent afterwards).
\set client :cbase + :client_id
\set sid :sbase + :client_id
SELECT * FROM open_ticket(
    :client::text, :sid, :cat,
    'Bench ticket: the site answers slowly since this morning.',
    'client:' || :client::text, 'Bench client',
    'Bench ticket: the site answers slowly since this morning.', 'api', false,
    gen_random_uuid(), 'tickets.ticket.created',
    jsonb_build_object('id', gen_random_uuid(), 'type', 'tickets.ticket.created', 'version', 1,
        'occurred_at', now(), 'data', jsonb_build_object('number', 0,
        'client_number', :client::text, 'subject', '',
        'service', jsonb_build_object('id', :sid::bigint, 'name', ''),
        'body', 'Bench ticket: the site answers slowly since this morning.')),
    md5(random()::text));

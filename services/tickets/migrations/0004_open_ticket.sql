-- Retired by 0006_retire_write_functions.sql.
-- A new ticket in one round trip (store.create_ticket says why): the lookups and its number, the
-- per-client lock, then the duplicate check and the inserts (the ticket, its first message and
-- its event) in a statement after the lock's. In READ COMMITTED a statement sees what was
-- committed before it started, so the check must come in a statement after the one taking the
-- lock, or it could miss a ticket the client's previous request committed while this one
-- waited; a function's statements each start anew.
-- The event is the caller's (shared.events.TicketCreated in its envelope), but for what only the
-- database knows: the number, the category's name (the subject) and the service's name.
CREATE FUNCTION open_ticket(
    p_client_number text, p_service_id bigint, p_category_id bigint, p_excerpt text,
    p_author_sub text, p_author_name text, p_body text, p_channel text,
    p_refuse_duplicate boolean, p_event_id uuid, p_routing_key text, p_event jsonb,
    p_correlation_id text
) RETURNS TABLE (
    service_found boolean, category_found boolean, duplicate bigint, number bigint,
    client_number text, service_id bigint, service_name text, category_id bigint, subject text,
    status text, created_at timestamptz, updated_at timestamptz, excerpt text,
    waiting_since timestamptz, message_id bigint, message_created_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_service text;
    v_category text;
    v_number bigint;
BEGIN
    -- A number drawn for a ticket that is then refused is skipped, as a rolled-back insert
    -- would skip it.
    SELECT (SELECT s.name FROM client_services s
            WHERE s.service_id = p_service_id AND s.client_number = p_client_number),
           (SELECT c.name FROM categories c WHERE c.id = p_category_id),
           nextval('ticket_number_seq')
      INTO v_service, v_category, v_number;
    IF v_service IS NULL OR v_category IS NULL THEN
        RETURN QUERY SELECT v_service IS NOT NULL, v_category IS NOT NULL, NULL::bigint,
            NULL::bigint, NULL::text, NULL::bigint, NULL::text, NULL::bigint, NULL::text,
            NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz,
            NULL::bigint, NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tickets:' || p_client_number));
    RETURN QUERY
    WITH duplicate AS (
        SELECT d.number FROM tickets d
        WHERE p_refuse_duplicate AND d.client_number = p_client_number
          AND d.service_id = p_service_id AND d.category_id = p_category_id
          AND d.status <> 'closed'
        ORDER BY d.number LIMIT 1
    ), t AS (
        INSERT INTO tickets AS t (number, client_number, service_id, service_name, category_id,
                                  subject, status, waiting_since, excerpt)
        SELECT v_number, p_client_number, p_service_id, v_service, p_category_id,
               v_category, 'open', now(), p_excerpt
        WHERE NOT EXISTS (SELECT FROM duplicate)
        RETURNING t.number, t.client_number, t.service_id, t.service_name, t.category_id,
                  t.subject, t.status, t.created_at, t.updated_at, t.excerpt, t.waiting_since
    ), m AS (
        INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body, channel)
        SELECT t.number, 'client', p_author_sub, p_author_name, p_body, p_channel FROM t
        RETURNING id, created_at
    ), o AS (
        INSERT INTO outbox (event_id, routing_key, aggregate, payload, correlation_id)
        SELECT p_event_id, p_routing_key, 'ticket:' || t.number,
               jsonb_set(p_event, '{data}', p_event->'data' || jsonb_build_object(
                   'number', t.number, 'subject', t.subject,
                   'service', jsonb_build_object('id', t.service_id, 'name', t.service_name))),
               p_correlation_id
        FROM t
    )
    SELECT true, true, (SELECT d.number FROM duplicate d),
           t.number, t.client_number, t.service_id, t.service_name, t.category_id, t.subject,
           t.status, t.created_at, t.updated_at, t.excerpt, t.waiting_since,
           m.id, m.created_at
    FROM (SELECT) AS one LEFT JOIN t ON true LEFT JOIN m ON true;
END;
$$;

-- A new ticket in one round trip: the per-client lock, then the duplicate check and the inserts
-- (the ticket, its first message and its event). In READ COMMITTED a statement sees what was
-- committed before it started, so the check must come in a statement after the one taking the
-- lock, or it could miss a ticket the client's previous request committed while this one
-- waited; a function's statements each start anew. As two statements of the caller's they
-- needed a transaction of their own: BEGIN and COMMIT were two more round trips of the four.
-- The number and the lookups are drawn before (store.look_up_new_ticket).
CREATE FUNCTION open_ticket(
    p_number bigint, p_client_number text, p_service_id bigint, p_service_name text,
    p_category_id bigint, p_subject text, p_excerpt text, p_author_sub text, p_author_name text,
    p_body text, p_channel text, p_refuse_duplicate boolean,
    p_event_id uuid, p_routing_key text, p_aggregate text, p_payload jsonb, p_correlation_id text
) RETURNS TABLE (
    duplicate bigint, service_ok boolean, number bigint, client_number text, service_id bigint,
    service_name text, category_id bigint, subject text, status text, created_at timestamptz,
    updated_at timestamptz, excerpt text, waiting_since timestamptz, message_id bigint,
    message_created_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tickets:' || p_client_number));
    RETURN QUERY
    WITH owned AS (
        SELECT FROM client_services
        WHERE client_services.service_id = p_service_id
          AND client_services.client_number = p_client_number
    ), duplicate AS (
        SELECT d.number FROM tickets d
        WHERE p_refuse_duplicate AND d.client_number = p_client_number
          AND d.service_id = p_service_id AND d.category_id = p_category_id
          AND d.status <> 'closed'
        ORDER BY d.number LIMIT 1
    ), t AS (
        INSERT INTO tickets AS t (number, client_number, service_id, service_name, category_id,
                                  subject, status, waiting_since, excerpt)
        SELECT p_number, p_client_number, p_service_id, p_service_name, p_category_id,
               p_subject, 'open', now(), p_excerpt
        WHERE NOT EXISTS (SELECT FROM duplicate) AND EXISTS (SELECT FROM owned)
        RETURNING t.number, t.client_number, t.service_id, t.service_name, t.category_id,
                  t.subject, t.status, t.created_at, t.updated_at, t.excerpt, t.waiting_since
    ), m AS (
        INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body, channel)
        SELECT t.number, 'client', p_author_sub, p_author_name, p_body, p_channel FROM t
        RETURNING id, created_at
    ), o AS (
        INSERT INTO outbox (event_id, routing_key, aggregate, payload, correlation_id)
        SELECT p_event_id, p_routing_key, p_aggregate, p_payload, p_correlation_id FROM t
    )
    SELECT (SELECT d.number FROM duplicate d), EXISTS (SELECT FROM owned),
           t.number, t.client_number, t.service_id, t.service_name, t.category_id, t.subject,
           t.status, t.created_at, t.updated_at, t.excerpt, t.waiting_since,
           m.id, m.created_at
    FROM (SELECT) AS one LEFT JOIN t ON true LEFT JOIN m ON true;
END;
$$;

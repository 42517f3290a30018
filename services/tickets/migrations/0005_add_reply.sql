-- Retired by 0006_retire_write_functions.sql.
-- A reply in one round trip (store.add_reply says why): the ticket locked and checked, the
-- message, the ticket's new state and the event.
-- The rules stay in Python (services/tickets/lifecycle.py): the caller passes what they give
-- for this author, the status after a reply from each status (a status missing from it refuses
-- the reply) and the statuses in which the client is waiting. The event is the caller's
-- (shared.events.TicketReplied in its envelope), but for what only the database knows: the
-- ticket's client, its subject and the new message's id.
CREATE FUNCTION add_reply(
    p_number bigint, p_client_number text, p_author_kind text, p_author_sub text,
    p_author_name text, p_body text, p_channel text, p_excerpt text, p_status_after jsonb,
    p_waiting text[], p_event_id uuid, p_routing_key text, p_aggregate text, p_event jsonb,
    p_correlation_id text
) RETURNS TABLE (
    found boolean, status_before text, message_id bigint, message_created_at timestamptz
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_ticket tickets%ROWTYPE;
    v_status text;
    v_message bigint;
    v_created timestamptz;
BEGIN
    SELECT * INTO v_ticket FROM tickets t WHERE t.number = p_number FOR UPDATE;
    -- Another client's ticket is not found (p_client_number is NULL for operators).
    IF NOT FOUND OR v_ticket.client_number <> coalesce(p_client_number, v_ticket.client_number)
    THEN
        RETURN QUERY SELECT false, NULL::text, NULL::bigint, NULL::timestamptz;
        RETURN;
    END IF;
    v_status := p_status_after ->> v_ticket.status;
    IF v_status IS NULL THEN
        RETURN QUERY SELECT true, v_ticket.status, NULL::bigint, NULL::timestamptz;
        RETURN;
    END IF;
    INSERT INTO messages (ticket_number, author_kind, author_sub, author_name, body, channel)
    VALUES (p_number, p_author_kind, p_author_sub, p_author_name, p_body, p_channel)
    RETURNING id, created_at INTO v_message, v_created;
    -- As store._set_state has it: a change of status is new activity; a waiting status starts
    -- (or keeps) the client's wait.
    UPDATE tickets SET
        status = v_status,
        updated_at = now(),
        waiting_since = CASE WHEN v_status = ANY (p_waiting)
                             THEN coalesce(waiting_since, now()) END,
        excerpt = coalesce(p_excerpt, excerpt)
    WHERE number = p_number;
    INSERT INTO outbox (event_id, routing_key, aggregate, payload, correlation_id)
    VALUES (p_event_id, p_routing_key, p_aggregate,
            jsonb_set(p_event, '{data}', p_event->'data' || jsonb_build_object(
                'client_number', v_ticket.client_number, 'subject', v_ticket.subject,
                'message_id', v_message)),
            p_correlation_id);
    RETURN QUERY SELECT true, v_ticket.status, v_message, v_created;
END;
$$;

-- tickets keeps the operators it may assign tickets to from `auth.operator.changed` events
-- (SPEC 9.2), published whenever an operator is created or changed. The operators made before
-- that event existed are announced once here, through the outbox, as accounts.operator_changed
-- would announce them.
INSERT INTO outbox (event_id, routing_key, aggregate, payload)
SELECT o.event_id, 'auth.operator.changed', 'operator:' || o.id,
       jsonb_build_object(
           'id', o.event_id, 'type', 'auth.operator.changed', 'version', 1,
           'occurred_at', now(),
           'data', jsonb_build_object(
               'operator_id', o.id, 'name', o.name, 'role', o.role, 'disabled', o.disabled))
FROM (SELECT id, name, role, disabled, gen_random_uuid() AS event_id FROM operators) o
ORDER BY o.id;

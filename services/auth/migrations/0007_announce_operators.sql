-- tickets keeps the operators it may assign tickets to from `auth.operator.changed` events
-- (SPEC 9.2), published whenever an operator is created or changed. The operators made before
-- that event existed are announced once here, through the outbox, as accounts.operator_changed
-- would announce them.
INSERT INTO outbox (event_id, routing_key, aggregate, payload)
SELECT e.id, 'auth.operator.changed', 'operator:' || o.id,
       jsonb_build_object(
           'id', e.id, 'type', 'auth.operator.changed', 'version', 1, 'occurred_at', now(),
           'data', jsonb_build_object(
               'operator_id', o.id, 'name', o.name, 'role', o.role, 'disabled', o.disabled))
FROM operators o CROSS JOIN LATERAL (SELECT gen_random_uuid() AS id) e
ORDER BY o.id;

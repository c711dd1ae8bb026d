-- The API's group of orders in one round trip (issue 14). With create_order_as of 0110 a group
-- took four: BEGIN with the role, the statement over the orders, the outbox insert, COMMIT;
-- each waited for its resumption behind the API's busy event loop (a group of five orders:
-- ~11 ms). Now the API makes the ids and the events itself beforehand and calls
-- api.create_orders as one statement outside any transaction (its implicit transaction
-- commits before the answer): the orders, each as its own caller, and the outbox rows of
-- those actually made.
--
-- create_order_as takes the ids now (the order's, and its variants' by number): the events,
-- built before the call, name them. The 0110 signature is dropped, unused: an API process of
-- the previous release still calling it fails its group, whose orders then go alone, as any
-- failed group's do. Both policies (orders_owner_insert, song_variants_owner_insert) and the
-- column grants to authenticated already take an explicit id; a taken id fails the group.
-- The rest is 0110's, and so are its reasons: SECURITY INVOKER and no SET clause, so the
-- inserts and their RETURNING run as the role just taken and row-level security checks every
-- row under its own caller; the role and claims it was entered with are given back.
DROP FUNCTION create_order_as(text, text, uuid, text, occasion, date, genre, mood, text, text,
    text, integer);

CREATE FUNCTION create_order_as(
    caller_role text,
    caller_claims text,
    new_id uuid,
    new_variant_ids uuid[],
    new_user_id uuid,
    new_recipient_name text,
    new_occasion occasion,
    new_occasion_date date,
    new_genre genre,
    new_mood mood,
    new_story text,
    new_idempotency_key text,
    new_request_digest text,
    OUT made orders,
    OUT variants song_variants[]
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    one song_variants;
    entered_role text := current_user;
    entered_claims text := pg_catalog.current_setting('request.jwt.claims', true);
    entered_token text := pg_catalog.current_setting('request.share_token', true);
BEGIN
    PERFORM pg_catalog.set_config('role', caller_role, true),
            pg_catalog.set_config('request.jwt.claims', caller_claims, true),
            pg_catalog.set_config('request.share_token', '', true);
    INSERT INTO public.orders (id, user_id, recipient_name, occasion, occasion_date, genre,
                               mood, story, idempotency_key, request_digest)
    VALUES (new_id, new_user_id, new_recipient_name, new_occasion, new_occasion_date,
            new_genre, new_mood, new_story, new_idempotency_key, new_request_digest)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING * INTO made;
    IF FOUND THEN
        -- A loop, not array_agg over a data-modifying CTE: measured, that took twice as long.
        variants := '{}';
        FOR one IN
            INSERT INTO public.song_variants (id, order_id, variant_number)
            SELECT v, made.id, n
            FROM pg_catalog.unnest(new_variant_ids) WITH ORDINALITY AS t (v, n)
            RETURNING *
        LOOP
            variants := variants || one;
        END LOOP;
    ELSE
        made := NULL;
    END IF;
    PERFORM pg_catalog.set_config('role', entered_role, true),
            pg_catalog.set_config('request.jwt.claims', coalesce(entered_claims, ''), true),
            pg_catalog.set_config('request.share_token', coalesce(entered_token, ''), true);
END
$$;

REVOKE ALL ON FUNCTION create_order_as(text, text, uuid, uuid[], uuid, text, occasion, date,
    genre, mood, text, text, text) FROM PUBLIC;
-- api.create_orders calls it as service_role, as the group's transaction of 0110 did.
GRANT EXECUTE ON FUNCTION create_order_as(text, text, uuid, uuid[], uuid, text, occasion, date,
    genre, mood, text, text, text) TO service_role;

-- The orders of one group, one row per order in input order: made (NULL when its key was
-- taken, already or by an earlier order of the group; the API answers that one alone) and its
-- variants. The i-th order's variants are the next variant_counts[i] of variant_ids. Then, as
-- service_role, the outbox rows of the orders made, in the order given (the events of the
-- i-th order name i in event_orders): one insert, as shared/unit_of_work.py's enqueue.
--
-- Called by the login role (its owner, as 0100's functions) outside any transaction, like
-- 0100's reads: set_config(..., true) lasts until the calling statement ends, and any failure
-- (a row refused by a policy, a taken id) fails the whole statement, nothing of it written.
-- It takes service_role first (api.take_caller: the login role holds it WITH INHERIT FALSE,
-- SET allowed), so no table is touched as the login role, and each order is handed to its
-- caller by create_order_as, which gives service_role back for the next one and the outbox.
CREATE FUNCTION api.create_orders(
    caller_roles text[],
    caller_claims text[],
    order_ids uuid[],
    variant_counts integer[],
    variant_ids uuid[],
    user_ids uuid[],
    recipient_names text[],
    occasions text[],
    occasion_dates date[],
    genres text[],
    moods text[],
    stories text[],
    idempotency_keys text[],
    request_digests text[],
    event_ids uuid[],
    event_subjects text[],
    event_payloads text[],
    event_headers text[],
    event_orders integer[]
)
RETURNS TABLE (made orders, variants song_variants[])
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    created record;
    made_orders boolean[] := '{}';
    next_variant integer := 1;
BEGIN
    PERFORM api.take_caller('service_role', '{"role": "service_role"}', '');
    FOR i IN 1 .. coalesce(pg_catalog.array_length(order_ids, 1), 0) LOOP
        SELECT * INTO created
        FROM public.create_order_as(
            caller_roles[i], caller_claims[i], order_ids[i],
            variant_ids[next_variant : next_variant + variant_counts[i] - 1], user_ids[i],
            recipient_names[i], occasions[i]::public.occasion, occasion_dates[i],
            genres[i]::public.genre, moods[i]::public.mood, stories[i], idempotency_keys[i],
            request_digests[i]);
        next_variant := next_variant + variant_counts[i];
        -- (made).id, not made IS NOT NULL: a row is NOT NULL only when all its fields are.
        made_orders[i] := (created.made).id IS NOT NULL;
        made := created.made;
        variants := created.variants;
        RETURN NEXT;
    END LOOP;
    INSERT INTO public.outbox (event_id, subject, payload, headers)
    SELECT e, s, p::jsonb, h::jsonb
    -- unnest of several arrays is FROM-clause syntax (ROWS FROM), not pg_catalog's function.
    FROM unnest(event_ids, event_subjects, event_payloads, event_headers, event_orders)
         WITH ORDINALITY AS t (e, s, p, h, o, n)
    WHERE made_orders[o]
    ORDER BY n;
END
$$;

-- Only the login role (its owner: it runs the migrations) calls it, as 0100's functions.
REVOKE ALL ON FUNCTION api.create_orders(text[], text[], uuid[], integer[], uuid[], uuid[],
    text[], text[], date[], text[], text[], text[], text[], text[], uuid[], text[], text[],
    text[], integer[]) FROM PUBLIC;

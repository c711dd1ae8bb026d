-- The API's group commit (issue 14): orders that arrive together are written in one
-- transaction, each under its own caller. One call inserts an order and its pending variants
-- after taking the caller's role and claims (set_config(..., true), as the per-request BEGIN
-- does), returns both rows, and gives the transaction back the role and claims it was called
-- with. So the outer statement runs it once per order over unnest(...): one round trip for
-- the whole group where each order took five (role, order, variants, back to service_role,
-- and, in a group, reading the rows back).
--
-- SECURITY INVOKER and no SET clause on purpose: the inserts and their RETURNING run as the
-- role just taken, so row-level security checks every row under its own caller
-- (orders_owner_insert, song_variants_owner_insert and their select policies); a SET clause
-- would also undo the role at the function's exit. Taking a role is checked against the
-- session's login role, as for any set_config('role'). A failure leaves the role taken, but
-- it fails the transaction too, which the rollback undoes.
-- made is NULL when the caller's Idempotency-Key is taken (the API then answers that request
-- alone, after the group's commit: a replay, or 409 for another body).
CREATE FUNCTION create_order_as(
    caller_role text,
    caller_claims text,
    new_user_id uuid,
    new_recipient_name text,
    new_occasion occasion,
    new_occasion_date date,
    new_genre genre,
    new_mood mood,
    new_story text,
    new_idempotency_key text,
    new_request_digest text,
    new_variant_count integer,
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
    INSERT INTO public.orders (user_id, recipient_name, occasion, occasion_date, genre, mood,
                               story, idempotency_key, request_digest)
    VALUES (new_user_id, new_recipient_name, new_occasion, new_occasion_date, new_genre,
            new_mood, new_story, new_idempotency_key, new_request_digest)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING * INTO made;
    IF FOUND THEN
        -- A loop, not array_agg over a data-modifying CTE: measured, that took twice as long.
        variants := '{}';
        FOR one IN
            INSERT INTO public.song_variants (order_id, variant_number)
            SELECT made.id, n FROM pg_catalog.generate_series(1, new_variant_count) AS n
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

REVOKE ALL ON FUNCTION create_order_as(text, text, uuid, text, occasion, date, genre, mood, text,
    text, text, integer) FROM PUBLIC;
-- The API opens a group's transaction as service_role and hands each order to its caller.
GRANT EXECUTE ON FUNCTION create_order_as(text, text, uuid, text, occasion, date, genre, mood,
    text, text, text, integer) TO service_role;

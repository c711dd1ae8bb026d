-- The API's group commit (issue 14): orders that arrive together are written in one
-- transaction, each under its own caller. One call inserts an order and its pending variants
-- after taking the caller's role and claims for the rest of the transaction (set_config(...,
-- true), as the per-request BEGIN does), so the outer statement can run it once per order over
-- unnest(...): one round trip for the whole group where each order took four (role, order,
-- variants, back to the service role).
--
-- SECURITY INVOKER and no SET clause on purpose: the inserts run as the role just taken, so
-- row-level security checks every row under its own caller (orders_owner_insert and
-- song_variants_owner_insert); a SET clause would also undo the role at the function's exit.
-- Taking a role is checked against the session's login role, as for any set_config('role').
-- Returns the new order's id, or NULL when the caller's Idempotency-Key is taken (the API then
-- answers that request alone, after the group's commit: a replay, or 409 for another body).
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
    new_variant_count integer
) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    new_id uuid;
BEGIN
    PERFORM pg_catalog.set_config('role', caller_role, true),
            pg_catalog.set_config('request.jwt.claims', caller_claims, true),
            pg_catalog.set_config('request.share_token', '', true);
    INSERT INTO public.orders (user_id, recipient_name, occasion, occasion_date, genre, mood,
                               story, idempotency_key, request_digest)
    VALUES (new_user_id, new_recipient_name, new_occasion, new_occasion_date, new_genre,
            new_mood, new_story, new_idempotency_key, new_request_digest)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NOT NULL THEN
        INSERT INTO public.song_variants (order_id, variant_number)
        SELECT new_id, n FROM pg_catalog.generate_series(1, new_variant_count) AS n;
    END IF;
    RETURN new_id;
END
$$;

REVOKE ALL ON FUNCTION create_order_as(text, text, uuid, text, occasion, date, genre, mood, text,
    text, text, integer) FROM PUBLIC;
-- The API opens a group's transaction as service_role and hands each order to its caller.
GRANT EXECUTE ON FUNCTION create_order_as(text, text, uuid, text, occasion, date, genre, mood,
    text, text, text, integer) TO service_role;

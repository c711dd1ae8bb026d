-- Cheaper plans for the order reads of 0100 (issue 14): api.get_order and api.list_orders keep
-- their signatures, their results and 0100's reasons (PL/pgSQL, SECURITY INVOKER, the caller
-- taken by api.take_caller before anything is read). Two changes, measured as PostgreSQL's CPU
-- per call of api.get_order on one connection (an order of three variants, payments off:
-- 142 us before, 123 us after; a bare `SELECT 1` round trip is 21 us):
--   * The payments are chosen by IF, not by CASE WHEN with_payments inside the query. The plan
--     is cached generic after its fifth call, and a generic plan of the CASE set up the
--     payments' subplan (and the initplans of its row-level security policy) on every call,
--     payments wanted or not. Each branch is now its own statement with its own plan.
--   * SET enable_bitmapscan = off. Every read here finds a handful of rows by an index (an
--     order by its key, its variants by (order_id, variant_number), its payments by order_id,
--     a page of orders by (user_id, created_at, id)); a bitmap scan of the variants followed by
--     a sort of three rows set up a bitmap and a sort on every call where an index scan in
--     the index's order needs neither.
-- The SET clause restores enable_bitmapscan alone as the function returns; the role, claims and
-- share token that api.take_caller sets with set_config(..., true) last, as in 0100, until the
-- end of the calling statement's transaction.

CREATE OR REPLACE FUNCTION api.get_order(
    caller_role text, caller_claims text, caller_token text, wanted uuid, with_payments boolean
)
RETURNS SETOF api.order_out
LANGUAGE plpgsql SECURITY INVOKER
SET enable_bitmapscan = off
AS $$
BEGIN
    PERFORM api.take_caller(caller_role, caller_claims, caller_token);
    IF with_payments THEN
        RETURN QUERY
            SELECT o.id, o.user_id, o.recipient_name, o.occasion, o.occasion_date, o.genre,
                   o.mood, o.story, o.created_at, o.updated_at,
                   ARRAY(SELECT ROW(v.id, v.order_id, v.variant_number, v.status, v.share_token,
                                    v.attempts, v.error, v.title, v.lyrics, v.duration_seconds,
                                    v.created_at, v.started_at, v.completed_at,
                                    v.payment_id)::api.variant_out
                         FROM public.song_variants v WHERE v.order_id = o.id
                         ORDER BY v.variant_number),
                   ARRAY(SELECT ROW(p.id, p.order_id, p.kind, p.status, p.amount, p.currency,
                                    p.checkout_url, p.created_at, p.paid_at,
                                    p.lapse_reason)::api.payment_out
                         FROM public.payments p WHERE p.order_id = o.id
                         ORDER BY p.created_at, p.id)
            FROM public.orders o
            WHERE o.id = wanted;
    ELSE
        RETURN QUERY
            SELECT o.id, o.user_id, o.recipient_name, o.occasion, o.occasion_date, o.genre,
                   o.mood, o.story, o.created_at, o.updated_at,
                   ARRAY(SELECT ROW(v.id, v.order_id, v.variant_number, v.status, v.share_token,
                                    v.attempts, v.error, v.title, v.lyrics, v.duration_seconds,
                                    v.created_at, v.started_at, v.completed_at,
                                    v.payment_id)::api.variant_out
                         FROM public.song_variants v WHERE v.order_id = o.id
                         ORDER BY v.variant_number),
                   NULL::api.payment_out[]
            FROM public.orders o
            WHERE o.id = wanted;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION api.list_orders(
    caller_role text, caller_claims text, caller_token text, owner uuid,
    after_created_at timestamptz, after_id uuid, page_size integer, with_payments boolean
)
RETURNS SETOF api.order_out
LANGUAGE plpgsql SECURITY INVOKER
SET enable_bitmapscan = off
AS $$
BEGIN
    PERFORM api.take_caller(caller_role, caller_claims, caller_token);
    IF with_payments THEN
        RETURN QUERY
            SELECT o.id, o.user_id, o.recipient_name, o.occasion, o.occasion_date, o.genre,
                   o.mood, o.story, o.created_at, o.updated_at,
                   ARRAY(SELECT ROW(v.id, v.order_id, v.variant_number, v.status, v.share_token,
                                    v.attempts, v.error, v.title, v.lyrics, v.duration_seconds,
                                    v.created_at, v.started_at, v.completed_at,
                                    v.payment_id)::api.variant_out
                         FROM public.song_variants v WHERE v.order_id = o.id
                         ORDER BY v.variant_number),
                   ARRAY(SELECT ROW(p.id, p.order_id, p.kind, p.status, p.amount, p.currency,
                                    p.checkout_url, p.created_at, p.paid_at,
                                    p.lapse_reason)::api.payment_out
                         FROM public.payments p WHERE p.order_id = o.id
                         ORDER BY p.created_at, p.id)
            FROM public.orders o
            WHERE o.user_id = owner
              AND (o.created_at, o.id)
                  < (coalesce(after_created_at, 'infinity'::timestamptz),
                     coalesce(after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
            ORDER BY o.created_at DESC, o.id DESC
            LIMIT page_size;
    ELSE
        RETURN QUERY
            SELECT o.id, o.user_id, o.recipient_name, o.occasion, o.occasion_date, o.genre,
                   o.mood, o.story, o.created_at, o.updated_at,
                   ARRAY(SELECT ROW(v.id, v.order_id, v.variant_number, v.status, v.share_token,
                                    v.attempts, v.error, v.title, v.lyrics, v.duration_seconds,
                                    v.created_at, v.started_at, v.completed_at,
                                    v.payment_id)::api.variant_out
                         FROM public.song_variants v WHERE v.order_id = o.id
                         ORDER BY v.variant_number),
                   NULL::api.payment_out[]
            FROM public.orders o
            WHERE o.user_id = owner
              AND (o.created_at, o.id)
                  < (coalesce(after_created_at, 'infinity'::timestamptz),
                     coalesce(after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
            ORDER BY o.created_at DESC, o.id DESC
            LIMIT page_size;
    END IF;
END
$$;

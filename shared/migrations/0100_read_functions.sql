-- Reads in one round trip (issue 14): GET /v1/orders/{id}, GET /v1/orders and the share lookup
-- each call one function here with one statement outside any transaction, instead of BEGIN with
-- SET LOCAL ROLE and the claims, the SELECT, and COMMIT (three round trips).
--
-- Each function takes the caller (role, claims, share token), sets them with
-- set_config(..., true) first, and only then reads, so row-level security checks every row under
-- the caller's role and claims exactly as in a transaction of the caller's own:
--   * SECURITY INVOKER (the default, spelled out): the role is taken by whoever calls, so the
--     login role can take only the roles it could SET anyway, and only the three app roles are
--     accepted at all;
--   * set_config(..., true) lasts until the end of the transaction, here the implicit one of the
--     calling statement: nothing outlives the call on a pooled connection;
--   * PL/pgSQL, not SQL: a SQL function's statements are parsed and rewritten (which is where
--     row-level security applies its policies) before any of them runs, that is before the role
--     is taken; PL/pgSQL plans each statement when it first reaches it, and PostgreSQL replans a
--     cached plan that depended on row-level security when the role differs from the one it was
--     planned for. The policies read the user through (SELECT auth.uid()), at run time, so one
--     plan serves every user of a role.
-- The result types are what the API shows, in the column order of services/api/orders/views.py
-- (tests/integration/api/test_reads.py holds them to it).

CREATE SCHEMA api;
-- The app roles resolve this schema's types inside the functions, after the role is taken.
GRANT USAGE ON SCHEMA api TO anon, authenticated, service_role;

CREATE TYPE api.variant_out AS (
    id uuid,
    order_id uuid,
    variant_number smallint,
    status generation_status,
    share_token uuid,
    attempts integer,
    error text,
    title text,
    lyrics text,
    duration_seconds double precision,
    created_at timestamptz,
    started_at timestamptz,
    completed_at timestamptz,
    payment_id uuid
);

CREATE TYPE api.payment_out AS (
    id uuid,
    order_id uuid,
    kind payment_kind,
    status payment_status,
    amount integer,
    currency text,
    checkout_url text,
    created_at timestamptz,
    paid_at timestamptz,
    lapse_reason text
);

-- An order, its variants by number, and (asked for with payments on; NULL otherwise) its
-- payments oldest first.
CREATE TYPE api.order_out AS (
    id uuid,
    user_id uuid,
    recipient_name text,
    occasion occasion,
    occasion_date date,
    genre genre,
    mood mood,
    story text,
    created_at timestamptz,
    updated_at timestamptz,
    variants api.variant_out[],
    payments api.payment_out[]
);

-- What a share link shows, and the storage path its audio is served from.
CREATE TYPE api.share_out AS (
    variant_number smallint,
    status generation_status,
    title text,
    lyrics text,
    duration_seconds double precision,
    storage_path text,
    recipient_name text,
    occasion occasion
);

-- The caller for the rest of the current transaction: shared/db.py's take_caller, in SQL.
CREATE FUNCTION api.take_caller(caller_role text, caller_claims text, caller_token text)
RETURNS void
LANGUAGE plpgsql SECURITY INVOKER
AS $$
BEGIN
    -- Only an app role: never the login role itself (or another role it may hold), which
    -- would read as something else than a caller.
    IF caller_role IS NULL OR caller_role NOT IN ('anon', 'authenticated', 'service_role') THEN
        RAISE EXCEPTION 'not an app role: %', caller_role USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_catalog.set_config('role', caller_role, true);
    PERFORM pg_catalog.set_config('request.jwt.claims', coalesce(caller_claims, ''), true);
    PERFORM pg_catalog.set_config('request.share_token', coalesce(caller_token, ''), true);
END
$$;

-- The order's variants (and payments) as arrays, one row per order: shared by both reads.
CREATE FUNCTION api.get_order(
    caller_role text, caller_claims text, caller_token text, wanted uuid, with_payments boolean
)
RETURNS SETOF api.order_out
LANGUAGE plpgsql SECURITY INVOKER
AS $$
BEGIN
    PERFORM api.take_caller(caller_role, caller_claims, caller_token);
    RETURN QUERY
        SELECT o.id, o.user_id, o.recipient_name, o.occasion, o.occasion_date, o.genre, o.mood,
               o.story, o.created_at, o.updated_at,
               ARRAY(SELECT ROW(v.id, v.order_id, v.variant_number, v.status, v.share_token,
                                v.attempts, v.error, v.title, v.lyrics, v.duration_seconds,
                                v.created_at, v.started_at, v.completed_at,
                                v.payment_id)::api.variant_out
                     FROM public.song_variants v WHERE v.order_id = o.id
                     ORDER BY v.variant_number),
               CASE WHEN with_payments THEN
                   ARRAY(SELECT ROW(p.id, p.order_id, p.kind, p.status, p.amount, p.currency,
                                    p.checkout_url, p.created_at, p.paid_at,
                                    p.lapse_reason)::api.payment_out
                         FROM public.payments p WHERE p.order_id = o.id
                         ORDER BY p.created_at, p.id)
               END
        FROM public.orders o
        WHERE o.id = wanted;
END
$$;

-- An owner's orders newest first, at most page_size of them after the position (after_created_at,
-- after_id); NULLs for the first page, which starts after +infinity (one plan for every page,
-- the position an index condition either way).
CREATE FUNCTION api.list_orders(
    caller_role text, caller_claims text, caller_token text, owner uuid,
    after_created_at timestamptz, after_id uuid, page_size integer, with_payments boolean
)
RETURNS SETOF api.order_out
LANGUAGE plpgsql SECURITY INVOKER
AS $$
BEGIN
    PERFORM api.take_caller(caller_role, caller_claims, caller_token);
    RETURN QUERY
        SELECT o.id, o.user_id, o.recipient_name, o.occasion, o.occasion_date, o.genre, o.mood,
               o.story, o.created_at, o.updated_at,
               ARRAY(SELECT ROW(v.id, v.order_id, v.variant_number, v.status, v.share_token,
                                v.attempts, v.error, v.title, v.lyrics, v.duration_seconds,
                                v.created_at, v.started_at, v.completed_at,
                                v.payment_id)::api.variant_out
                     FROM public.song_variants v WHERE v.order_id = o.id
                     ORDER BY v.variant_number),
               CASE WHEN with_payments THEN
                   ARRAY(SELECT ROW(p.id, p.order_id, p.kind, p.status, p.amount, p.currency,
                                    p.checkout_url, p.created_at, p.paid_at,
                                    p.lapse_reason)::api.payment_out
                         FROM public.payments p WHERE p.order_id = o.id
                         ORDER BY p.created_at, p.id)
               END
        FROM public.orders o
        WHERE o.user_id = owner
          AND (o.created_at, o.id) < (coalesce(after_created_at, 'infinity'::timestamptz),
                                      coalesce(after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
        ORDER BY o.created_at DESC, o.id DESC
        LIMIT page_size;
END
$$;

-- The variant a share token names, and the two fields of its order the share view shows.
CREATE FUNCTION api.get_share(
    caller_role text, caller_claims text, caller_token text, wanted uuid
)
RETURNS SETOF api.share_out
LANGUAGE plpgsql SECURITY INVOKER
AS $$
BEGIN
    PERFORM api.take_caller(caller_role, caller_claims, caller_token);
    RETURN QUERY
        SELECT v.variant_number, v.status, v.title, v.lyrics, v.duration_seconds, v.storage_path,
               o.recipient_name, o.occasion
        FROM public.song_variants v JOIN public.orders o ON o.id = v.order_id
        WHERE v.share_token = wanted;
END
$$;

-- Only the login role (their owner: it runs the migrations) calls them; an app role has no use
-- for them. A separate migration role would grant EXECUTE on them to the services' role.
REVOKE ALL ON FUNCTION api.take_caller(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION api.get_order(text, text, text, uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION api.list_orders(text, text, text, uuid, timestamptz, uuid, integer, boolean)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION api.get_share(text, text, text, uuid) FROM PUBLIC;

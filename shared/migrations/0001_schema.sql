-- serenade's schema: the seed's objects (song_variants, generation_status, failed_jobs,
-- orders.occasion_date) with their meaning kept, the outbox, and row-level security.
-- Roles are created by the migration runner before this file runs (they are cluster-wide).

-- ---------------------------------------------------------------------------------------
-- auth: the claims of the caller, as PostgREST and Supabase expose them.
-- ---------------------------------------------------------------------------------------
CREATE SCHEMA auth;

-- The claims of the current request. After a setting has been used once in a session an
-- unset value reads as '' rather than NULL, so guard the cast with nullif.
CREATE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(pg_catalog.current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

-- A text that is not a UUID yields NULL instead of an error: a malformed token must not
-- turn a lookup into a 500.
CREATE FUNCTION auth.try_uuid(value text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
        THEN value::uuid
    END
$$;

CREATE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT auth.try_uuid(auth.jwt() ->> 'sub') $$;

CREATE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(auth.jwt() ->> 'role', 'anon') $$;

-- The share token an anonymous caller presents (GET /v1/share/{token}).
CREATE FUNCTION auth.share_token() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT auth.try_uuid(nullif(pg_catalog.current_setting('request.share_token', true), ''))
$$;

-- ---------------------------------------------------------------------------------------
-- Closed sets
-- ---------------------------------------------------------------------------------------
CREATE TYPE generation_status AS ENUM ('pending', 'generating', 'complete', 'failed');
CREATE TYPE occasion AS ENUM (
    'birthday', 'anniversary', 'wedding', 'valentines', 'graduation',
    'mothers_day', 'fathers_day', 'holiday', 'other'
);
CREATE TYPE genre AS ENUM ('pop', 'rock', 'country', 'acoustic', 'rnb', 'hiphop', 'jazz', 'lullaby');
CREATE TYPE mood AS ENUM ('joyful', 'romantic', 'nostalgic', 'funny', 'heartfelt', 'epic');

CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------------------------------
-- orders
-- ---------------------------------------------------------------------------------------
CREATE TABLE orders (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    recipient_name text NOT NULL
        CHECK (char_length(recipient_name) BETWEEN 1 AND 100 AND btrim(recipient_name) <> ''),
    occasion occasion NOT NULL,
    occasion_date date,
    genre genre NOT NULL,
    mood mood NOT NULL DEFAULT 'heartfelt',
    story text CHECK (char_length(story) <= 2000),
    -- Idempotency-Key of the request that created the order, and a digest of its validated
    -- body, so a replay with another body is told apart (409).
    idempotency_key text CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    request_digest text,
    -- Set when orders.completed was announced; cleared when an upsell or retry makes the
    -- order unfinished again, so the next completion is announced once more.
    completion_announced_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_idempotency_key_per_user UNIQUE (user_id, idempotency_key)
);

-- An owner's orders, newest first, in keyset pages.
CREATE INDEX orders_user_created_idx ON orders (user_id, created_at DESC, id DESC);
-- Occasion reminders look orders up by occasion date.
CREATE INDEX orders_occasion_date_idx ON orders (occasion_date) WHERE occasion_date IS NOT NULL;

CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------------------
-- song_variants: one row per generated variant (3 by default, up to 5 with the upsell)
-- ---------------------------------------------------------------------------------------
CREATE TABLE song_variants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    variant_number smallint NOT NULL CHECK (variant_number BETWEEN 1 AND 5),
    status generation_status NOT NULL DEFAULT 'pending',
    share_token uuid NOT NULL DEFAULT gen_random_uuid(),
    -- A path in storage, never a URL: URLs are signed on demand.
    storage_path text,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    error text,
    title text,
    lyrics text,
    duration_seconds double precision CHECK (duration_seconds >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    CONSTRAINT song_variants_number_per_order UNIQUE (order_id, variant_number),
    CONSTRAINT song_variants_share_token_key UNIQUE (share_token),
    CONSTRAINT song_variants_complete_has_audio
        CHECK (status <> 'complete' OR storage_path IS NOT NULL)
);

CREATE TRIGGER song_variants_touch BEFORE UPDATE ON song_variants
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- ---------------------------------------------------------------------------------------
-- failed_jobs: the dead-letter table
-- ---------------------------------------------------------------------------------------
CREATE TABLE failed_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subject text NOT NULL,
    service text NOT NULL,
    -- The original event in full, or (when it was not JSON) its raw text, verbatim.
    event_data jsonb,
    event_text text,
    error_type text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- One row per failure: a redelivered envelope finds its message id taken.
    message_id text NOT NULL,
    correlation_id text,
    -- The variant the failed event was about, when it names one: replay and resolution use it.
    variant_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz,
    resolved_at timestamptz,
    CONSTRAINT failed_jobs_message_id_key UNIQUE (message_id),
    CONSTRAINT failed_jobs_event_kept CHECK (num_nonnulls(event_data, event_text) = 1)
);

-- The operator's view: newest first, optionally only the unresolved ones.
CREATE INDEX failed_jobs_created_idx ON failed_jobs (created_at DESC, id DESC);
CREATE INDEX failed_jobs_unresolved_idx ON failed_jobs (created_at DESC, id DESC)
    WHERE resolved_at IS NULL;
-- A completed variant resolves its open rows.
CREATE INDEX failed_jobs_open_variant_idx ON failed_jobs (variant_id)
    WHERE resolved_at IS NULL AND variant_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- outbox: events written in the same transaction as the change they announce
-- ---------------------------------------------------------------------------------------
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL,
    subject text NOT NULL,
    payload jsonb NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);

-- The relay reads what is still to send, oldest first.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- Wake the relays when a transaction that wrote events commits (NOTIFY is delivered on commit).
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('serenade_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- ---------------------------------------------------------------------------------------
-- Privileges: minimal, per role. Row-level security narrows them to rows.
-- ---------------------------------------------------------------------------------------
REVOKE ALL ON orders, song_variants, failed_jobs, outbox FROM PUBLIC;
REVOKE ALL ON FUNCTION touch_updated_at(), outbox_notify() FROM PUBLIC;

GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

-- anon: the share view only. Of an order, the fields the share page shows; of a variant, what
-- the share view shows and the storage path its audio is served from.
GRANT SELECT (id, recipient_name, occasion) ON orders TO anon;
GRANT SELECT (id, order_id, variant_number, status, share_token, storage_path, title, lyrics,
              duration_seconds, completed_at)
    ON song_variants TO anon;

-- authenticated: reads its own orders and variants, creates orders with pending variants.
-- It never writes status, storage_path, attempts or failed_jobs.
GRANT SELECT ON orders, song_variants TO authenticated;
GRANT INSERT (id, user_id, recipient_name, occasion, occasion_date, genre, mood, story,
              idempotency_key, request_digest)
    ON orders TO authenticated;
GRANT INSERT (id, order_id, variant_number) ON song_variants TO authenticated;

-- service_role: the system's own writes.
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, song_variants, failed_jobs, outbox TO service_role;

-- ---------------------------------------------------------------------------------------
-- Row-level security, enabled and forced on every table (the owner is no exception).
-- ---------------------------------------------------------------------------------------
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
ALTER TABLE song_variants ENABLE ROW LEVEL SECURITY;
ALTER TABLE song_variants FORCE ROW LEVEL SECURITY;
ALTER TABLE failed_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE failed_jobs FORCE ROW LEVEL SECURITY;
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;

-- orders -------------------------------------------------------------------------------
CREATE POLICY orders_owner_select ON orders FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid()));

CREATE POLICY orders_owner_insert ON orders FOR INSERT TO authenticated
    WITH CHECK (user_id = (SELECT auth.uid()));

-- The seed's gap: anon could read any shared row. Here anon sees an order only through the
-- one variant whose token it presents.
CREATE POLICY orders_shared_select ON orders FOR SELECT TO anon
    USING (id = (SELECT v.order_id FROM song_variants v
                 WHERE v.share_token = (SELECT auth.share_token())));

CREATE POLICY orders_service_all ON orders FOR ALL TO service_role
    USING (true) WITH CHECK (true);

-- song_variants ------------------------------------------------------------------------
CREATE POLICY song_variants_owner_select ON song_variants FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM orders o
                   WHERE o.id = song_variants.order_id AND o.user_id = (SELECT auth.uid())));

CREATE POLICY song_variants_owner_insert ON song_variants FOR INSERT TO authenticated
    WITH CHECK (
        status = 'pending' AND storage_path IS NULL AND attempts = 0
        AND EXISTS (SELECT 1 FROM orders o
                    WHERE o.id = song_variants.order_id AND o.user_id = (SELECT auth.uid()))
    );

CREATE POLICY song_variants_shared_select ON song_variants FOR SELECT TO anon
    USING (share_token = (SELECT auth.share_token()));

CREATE POLICY song_variants_service_all ON song_variants FOR ALL TO service_role
    USING (true) WITH CHECK (true);

-- failed_jobs and outbox: the system's alone ------------------------------------------
CREATE POLICY failed_jobs_service_all ON failed_jobs FOR ALL TO service_role
    USING (true) WITH CHECK (true);

CREATE POLICY outbox_service_all ON outbox FOR ALL TO service_role
    USING (true) WITH CHECK (true);

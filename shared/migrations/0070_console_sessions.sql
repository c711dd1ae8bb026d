-- The operator console's sign-ins (services/api/console): sessions live here, not in a
-- process's memory, so any API process can serve an operator and a sign-out revokes the
-- session everywhere at once. Failed sign-ins are kept briefly to rate-limit them across
-- processes.

-- ---------------------------------------------------------------------------------------
-- console_sessions: one row per sign-in
-- ---------------------------------------------------------------------------------------
CREATE TABLE console_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SHA-256 (hex) of the cookie's secret value: a copy of this table signs no one in.
    secret_hash text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    -- The synchronizer token every state-changing form of this session must carry.
    csrf_token text NOT NULL CHECK (char_length(csrf_token) >= 32),
    -- The presented token's jti, when it had one: which credential opened the session.
    token_id text,
    -- Where the sign-in came from, for the operator's own audit.
    client text,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The token's exp, and never more than 12 hours after created_at.
    expires_at timestamptz NOT NULL,
    -- Sign-out (or a new sign-in over this one) ends the session on the server.
    revoked_at timestamptz,
    CONSTRAINT console_sessions_secret_hash_key UNIQUE (secret_hash),
    CONSTRAINT console_sessions_at_most_12_hours
        CHECK (expires_at <= created_at + interval '12 hours')
);

-- Expired sessions are swept by age.
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

-- ---------------------------------------------------------------------------------------
-- console_sign_in_failures: refused sign-ins, counted per client over a short window
-- ---------------------------------------------------------------------------------------
CREATE TABLE console_sign_in_failures (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client text NOT NULL,
    reason text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX console_sign_in_failures_client_idx ON console_sign_in_failures (client, failed_at);

-- ---------------------------------------------------------------------------------------
-- Privileges: the system's alone (the console signs in as service_role).
-- ---------------------------------------------------------------------------------------
REVOKE ALL ON console_sessions, console_sign_in_failures FROM PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE ON console_sessions, console_sign_in_failures
    TO service_role;

ALTER TABLE console_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE console_sign_in_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_sign_in_failures FORCE ROW LEVEL SECURITY;

CREATE POLICY console_sessions_service_all ON console_sessions FOR ALL TO service_role
    USING (true) WITH CHECK (true);
CREATE POLICY console_sign_in_failures_service_all ON console_sign_in_failures
    FOR ALL TO service_role USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------------------
-- The console's system page counts what finished in the last hour, every few seconds while
-- it is open: partial indexes keep that a short range scan. Only finishing writes them (a
-- variant's started/pending updates leave completed_at NULL and stay HOT).
-- ---------------------------------------------------------------------------------------
CREATE INDEX orders_completion_announced_idx ON orders (completion_announced_at)
    WHERE completion_announced_at IS NOT NULL;
CREATE INDEX song_variants_completed_idx ON song_variants (completed_at)
    WHERE completed_at IS NOT NULL;

-- serenade's PostgreSQL roles and database, for a fresh cluster (the compose stack mounts this
-- file into /docker-entrypoint-initdb.d, which runs it once, as the superuser, with psql).
--
-- The services never connect as a superuser: they log in as `serenade`, which is
--   * NOSUPERUSER and NOBYPASSRLS, so row-level security binds it (every table also has
--     FORCE ROW LEVEL SECURITY, so owning the tables is no way around it);
--   * NOINHERIT, and granted the three application roles WITH INHERIT FALSE, SET TRUE: acting
--     as itself it has none of their rights; a request takes one with SET LOCAL ROLE;
--   * NOCREATEROLE and NOCREATEDB, so it cannot mint a more powerful role or grant itself one.
-- The application roles (anon, authenticated, service_role) are cluster-wide and are made here
-- because only a superuser (or a CREATEROLE role) may create them; `serenade migrate` finds
-- them, and the grant, already in place and leaves both alone.
--
-- The login password comes from the environment variable SERENADE_DB_PASSWORD (psql 15+
-- \getenv), so it is neither in this file nor on a command line. Safe to run again: roles are
-- created when missing and brought back to these attributes when present.
-- Run by hand: SERENADE_DB_PASSWORD=... psql -v ON_ERROR_STOP=1 -U postgres -d postgres -f THIS

\set ON_ERROR_STOP on
\set password ''
\getenv password SERENADE_DB_PASSWORD

-- Hand the password to the DO block below (psql does not interpolate inside dollar quotes).
SELECT pg_catalog.set_config('serenade.login_password', :'password', false) AS ignored \gset
\unset password

DO $$
DECLARE
    login_password text := pg_catalog.current_setting('serenade.login_password', true);
    app_role text;
BEGIN
    IF pg_catalog.current_setting('server_version_num')::int < 150000 THEN
        RAISE EXCEPTION 'serenade needs PostgreSQL 15 or newer';
    END IF;
    IF coalesce(login_password, '') = '' THEN
        RAISE EXCEPTION 'SERENADE_DB_PASSWORD is not set'
            USING HINT = 'Give the password of the login role serenade in SERENADE_DB_PASSWORD.';
    END IF;

    -- The login role of the services and of `serenade migrate`.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'serenade') THEN
        CREATE ROLE serenade LOGIN;
    END IF;
    EXECUTE pg_catalog.format(
        'ALTER ROLE serenade LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB '
        'NOREPLICATION NOINHERIT PASSWORD %L',
        login_password);

    -- The application roles: they never log in and never bypass row-level security.
    FOREACH app_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = app_role) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', app_role);
        END IF;
        EXECUTE pg_catalog.format(
            'ALTER ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB '
            'NOREPLICATION NOINHERIT',
            app_role);
        -- May SET ROLE to it; inherits none of its rights. PostgreSQL 15 has no per-grant
        -- INHERIT: there the login role's NOINHERIT does the same.
        IF pg_catalog.current_setting('server_version_num')::int >= 160000 THEN
            EXECUTE pg_catalog.format(
                'GRANT %I TO serenade WITH INHERIT FALSE, SET TRUE', app_role);
        ELSE
            EXECUTE pg_catalog.format('GRANT %I TO serenade', app_role);
        END IF;
    END LOOP;
END
$$;

SELECT pg_catalog.set_config('serenade.login_password', '', false) AS ignored \gset

-- The database, owned by the login role: `serenade migrate` creates the schema in it as that
-- role, and the tables' owner is bound by row-level security like everyone else (FORCE).
SELECT 'CREATE DATABASE serenade OWNER serenade'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'serenade') \gexec
ALTER DATABASE serenade OWNER TO serenade;
-- Only serenade connects to it; the application roles never log in.
REVOKE CONNECT, TEMPORARY ON DATABASE serenade FROM PUBLIC;

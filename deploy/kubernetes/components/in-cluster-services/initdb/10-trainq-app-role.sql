-- trainq's least-privilege application role (reliability.md, "DB roles").
--
-- The postgres image runs this file once, when it initialises an empty data volume, as
-- $POSTGRES_USER (the superuser, which `migrate` also uses to run Alembic and so owns the tables).
-- Workers, Flower and the CLI connect as trainq_app: data only (SELECT/INSERT/UPDATE/DELETE), no
-- CREATE, DROP, ALTER or TRUNCATE, and server-side timeouts that bound stuck queries and locks held
-- by paused or zombie workers.
--
-- The password comes from the container's environment through psql's \getenv (psql 15+), so it is
-- never on a command line and never in this file. Changing it later: see docs/cluster.md.

\set ON_ERROR_STOP 1
\getenv app_password POSTGRES_APP_PASSWORD
\getenv owner POSTGRES_USER
\getenv db POSTGRES_DB

\if :{?app_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'POSTGRES_APP_PASSWORD is not set; see .env.example'; END $$;
\endif

CREATE ROLE trainq_app LOGIN PASSWORD :'app_password';
ALTER ROLE trainq_app SET statement_timeout = '30s';
ALTER ROLE trainq_app SET lock_timeout = '5s';
ALTER ROLE trainq_app SET idle_in_transaction_session_timeout = '60s';

REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO trainq_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO trainq_app;

-- Tables and sequences that Alembic creates later (as the owner) are granted automatically.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO trainq_app;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO trainq_app;

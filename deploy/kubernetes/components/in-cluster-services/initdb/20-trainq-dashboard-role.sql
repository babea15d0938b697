-- trainq's read-only role for the web dashboard (`trainq dashboard`, the compose `dashboard`
-- service): SELECT only, and every transaction read-only by default, so even a bug in the
-- dashboard cannot write. Same lifecycle as 10-trainq-app-role.sql: run once, by the postgres
-- image, when it initialises an empty data volume; the password comes from the environment.

\set ON_ERROR_STOP 1
\getenv dashboard_password POSTGRES_DASHBOARD_PASSWORD
\getenv owner POSTGRES_USER
\getenv db POSTGRES_DB

\if :{?dashboard_password}
\else
DO $$ BEGIN RAISE EXCEPTION 'POSTGRES_DASHBOARD_PASSWORD is not set; see .env.example'; END $$;
\endif

CREATE ROLE trainq_dashboard LOGIN PASSWORD :'dashboard_password';
ALTER ROLE trainq_dashboard SET default_transaction_read_only = on;
ALTER ROLE trainq_dashboard SET statement_timeout = '30s';
ALTER ROLE trainq_dashboard SET idle_in_transaction_session_timeout = '60s';

GRANT CONNECT ON DATABASE :"db" TO trainq_dashboard;
GRANT USAGE ON SCHEMA public TO trainq_dashboard;

-- Tables that Alembic creates later (as the owner) become readable, never writable.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT ON TABLES TO trainq_dashboard;

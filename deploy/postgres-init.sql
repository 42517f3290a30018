-- The demo's databases (docker-compose.yml): one role per service, owning its own database and
-- allowed into no other, so that no service can read another's tables (SPEC §2). The postgres
-- image runs this once, as its superuser, when its data volume is new; the passwords come from
-- the postgres container's environment (psql 15's \getenv), which docker-compose.yml fills from
-- the same variables as the services' database URLs. Owning the database lets each service run
-- its migrations, and create the trusted extension unaccent that tickets uses.
\set ON_ERROR_STOP on
\getenv auth_password AUTH_DB_PASSWORD
\getenv tickets_password TICKETS_DB_PASSWORD
\getenv notifier_password NOTIFIER_DB_PASSWORD
\getenv panel_password PANEL_DB_PASSWORD

CREATE ROLE helpdesk_auth LOGIN PASSWORD :'auth_password';
CREATE ROLE helpdesk_tickets LOGIN PASSWORD :'tickets_password';
CREATE ROLE helpdesk_notifier LOGIN PASSWORD :'notifier_password';
CREATE ROLE helpdesk_panel LOGIN PASSWORD :'panel_password';

CREATE DATABASE helpdesk_auth OWNER helpdesk_auth;
CREATE DATABASE helpdesk_tickets OWNER helpdesk_tickets;
CREATE DATABASE helpdesk_notifier OWNER helpdesk_notifier;
CREATE DATABASE helpdesk_panel OWNER helpdesk_panel;

-- Every role may connect to every database unless told otherwise (PUBLIC has CONNECT).
REVOKE CONNECT, TEMPORARY ON DATABASE helpdesk_auth FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE helpdesk_tickets FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE helpdesk_notifier FROM PUBLIC;
REVOKE CONNECT, TEMPORARY ON DATABASE helpdesk_panel FROM PUBLIC;

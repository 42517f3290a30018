-- Each service owns its database (no service reads another's tables).
CREATE DATABASE helpdesk_auth;
CREATE DATABASE helpdesk_tickets;
CREATE DATABASE helpdesk_notifier;
CREATE DATABASE helpdesk_panel;

"""auth: clients, operators, credentials and tokens (SPEC §4)."""

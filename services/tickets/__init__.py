"""tickets: categories, tickets and messages, and their lifecycle (SPEC §5)."""

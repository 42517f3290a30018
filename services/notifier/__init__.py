"""The notifier: events in, email out; inbound email answered, never applied."""

"""The common package every Helpdesk service stands on. It imports no service."""

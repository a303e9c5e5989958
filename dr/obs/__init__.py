"""Observability: the one logging set-up (and, later, metrics and their HTTP endpoint)."""

"""Sinks: the only writers of the MySQL and Redis read models, batched and idempotent, plus replay and lag."""

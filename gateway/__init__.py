"""The ingestion gateway: a thin Starlette app that validates, authenticates, rate-limits and writes to Kafka."""

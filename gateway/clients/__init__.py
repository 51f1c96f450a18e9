"""The gateway's clients of Kafka, MySQL and Redis, each behind a circuit breaker."""

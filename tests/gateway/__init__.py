"""Tests of gateway/: routes, middleware and clients against the real Kafka, MariaDB and Redis."""

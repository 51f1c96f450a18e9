"""Tests of state/: migrations, read-model indexes (EXPLAIN) and the Redis key layout."""

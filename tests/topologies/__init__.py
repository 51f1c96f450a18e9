"""Tests of topologies/: each topology as its own process on the real Kafka."""

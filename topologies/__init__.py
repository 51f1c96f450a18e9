"""Stateful Quix Streams topologies: each module here is its own process and consumer group."""

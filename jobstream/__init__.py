"""Pieces every Jobstream process shares: settings, errors and Kafka topic administration."""

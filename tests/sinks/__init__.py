"""Tests of sinks/: the MySQL and Redis sinks, replay and lag."""

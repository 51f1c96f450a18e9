"""Read models: the MySQL schema (versioned migrations) and the Redis key layout the sinks fill."""

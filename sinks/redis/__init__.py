"""The Redis read models: what each event does to them, applied by one sink in one script per batch."""

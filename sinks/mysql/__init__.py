"""The MySQL read models: one mapping (topic -> tables) per module, written by one batched upsert sink."""

"""Applications: candidates apply (exactly one per Idempotency-Key), employers move them through stages."""

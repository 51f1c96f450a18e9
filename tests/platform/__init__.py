"""Tests of the whole platform at once: end to end, chaos, fuzz, poison per stage, regressions, benchmark smoke."""

"""Sinks: the only writers of the MySQL (`mysql/`) and Redis (`redis/`) read models, batched and idempotent, plus the
SRE tools (`sre/`: replay, lag, checksum).
"""

"""Stateful Quix Streams topologies: each package here is its own process and consumer group (`python -m
topologies.<name>`); `runtime.py` is what they share.
"""

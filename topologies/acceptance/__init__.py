"""The acceptance topology (`python -m topologies.acceptance`): the stream in `topology.py`, the rules in `rules.py`,
what a decision emits in `messages.py`.
"""

"""The analytics topology (`python -m topologies.analytics`): the stream and its windows in `topology.py`, the facts
they sum in `facts.py`.
"""

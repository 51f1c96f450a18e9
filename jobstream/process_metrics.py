"""The registry every Jobstream process starts its metrics from: its own, with the process's vital signs on it.

Each process serves one registry of its own (never prometheus_client's global one, so tests can build many in one
interpreter), which would leave out what the global one carries for free. CPU, memory, open files and start time
(`process_*`: a restart shows as a new `process_start_time_seconds`), the Python version (`python_info`) and
garbage collections (`python_gc_*`) are what an SRE looks at first when one process misbehaves.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def process_registry() -> CollectorRegistry:
    """A fresh registry already holding the process, platform and garbage-collector collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry

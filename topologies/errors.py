"""Errors the topologies raise on purpose."""

from __future__ import annotations

from jobstream.errors import JobstreamError


class TopologyError(JobstreamError):
    """A topology cannot start or go on."""


class MissingTopicsError(TopologyError):
    """A catalog topic a topology reads or writes is not on the cluster."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"topics missing on the cluster: {', '.join(missing)}; create them with `python -m stack up`")
        self.missing = missing

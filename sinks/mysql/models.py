"""The MySQL read models: which mappings (topic -> tables) build each one. Replay rebuilds them by name."""

from __future__ import annotations

from dataclasses import dataclass

from sinks.mysql.analytics import CompanyWindowsMapping, JobWindowsMapping
from sinks.mysql.applications import DecisionsMapping
from sinks.mysql.jobs import JobsMapping
from sinks.mysql.notifications import NotificationsMapping
from sinks.mysql.sink import Mapping
from sinks.mysql.stages import StagesMapping


@dataclass(frozen=True)
class ReadModel:
    name: str
    mappings: tuple[Mapping, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(table for mapping in self.mappings for table in mapping.tables))

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(mapping.topic for mapping in self.mappings)


def read_models() -> dict[str, ReadModel]:
    """Every MySQL read model by name, each with fresh mapping objects."""
    models = (
        ReadModel("jobs", (JobsMapping(),)),
        ReadModel("applications", (DecisionsMapping(), StagesMapping())),
        ReadModel("notifications", (NotificationsMapping(),)),
        ReadModel("analytics", (JobWindowsMapping(), CompanyWindowsMapping())),
    )
    return {model.name: model for model in models}

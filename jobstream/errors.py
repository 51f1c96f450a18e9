class JobstreamError(Exception):
    """Root of every error Jobstream raises on purpose."""


class SettingsError(JobstreamError):
    """An environment variable holds a value Jobstream cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class DependencyUnavailable(JobstreamError):
    """A dependency (Kafka, a store, a provider) cannot serve now; retrying later may succeed."""

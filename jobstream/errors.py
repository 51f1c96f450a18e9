class JobstreamError(Exception):
    """Root of every error Jobstream raises on purpose."""


class SettingsError(JobstreamError):
    """An environment variable holds a value Jobstream cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class DependencyUnavailable(JobstreamError):
    """A dependency (Kafka, a store, a provider) cannot serve now; retrying later may succeed.

    `dependency` names it (``kafka``, ``mysql``, ``redis`` ...) and `retry_after_s` says when a retry may succeed:
    the gateway answers 503 ``<dependency>_unavailable`` with that Retry-After, a stage backs off.
    """

    def __init__(self, dependency: str, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.dependency = dependency
        self.message = message
        self.retry_after_s = retry_after_s

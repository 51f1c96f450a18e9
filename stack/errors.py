from jobstream.errors import JobstreamError


class StackError(JobstreamError):
    """A part of the local stack could not be started, reached or stopped."""


class PortTakenError(StackError):
    def __init__(self, port: int, service: str, holder: str) -> None:
        super().__init__(f"port {port} is needed by {service} but is taken by {holder}")
        self.port = port
        self.service = service
        self.holder = holder

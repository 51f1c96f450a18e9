from jobstream.errors import JobstreamError


class SchemaError(JobstreamError):
    """A message cannot be encoded or decoded with the committed Avro schemas."""


class UnknownWriterSchemaError(SchemaError):
    def __init__(self, event: str, fingerprint: bytes) -> None:
        super().__init__(f"{event}: no committed schema has fingerprint {fingerprint.hex()}")
        self.event = event
        self.fingerprint = fingerprint

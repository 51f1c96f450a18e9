"""Tests of schemas/: Avro compatibility, the topic catalog and the typed records."""

"""The partitioner of every producer of a keyed topic: the gateway, the outbox relay, every Quix stage.

A topology that reads several topics as one (a stream-table join, windows over decisions and views of one job)
takes partition i of each together: it is only correct when every producer puts one key on the same partition
number. librdkafka's default (``consistent_random``, CRC32) and Quix's producer (``murmur2``, as the Java client)
disagree for the same key bytes, so every producer names this one explicitly.
"""

from __future__ import annotations

# Java-compatible murmur2 of the key bytes: what Quix Streams' producer uses unless told otherwise.
KEY_PARTITIONER = "murmur2"

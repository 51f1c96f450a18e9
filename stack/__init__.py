"""The local stack: Apache Kafka (KRaft), MariaDB and Redis as private processes on loopback.

Run ``python -m stack up`` and ``python -m stack down``. Production uses real clusters instead;
nothing outside this package knows the local stack exists.
"""

"""The exactly-once Application every topology runs in: its Kafka identity and transactional ids (no broker needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from jobstream.identities import local_password
from jobstream.settings import Settings
from jobstream.stage_metrics import StageMetrics
from topologies.runtime import build_application

pytestmark = pytest.mark.unit


def _application_config(tmp_path: Path, instance_id: str | None):
    settings = Settings.from_env({"JOBSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, identity="acceptance")
    topology = dataclasses.replace(settings.acceptance, state_dir=tmp_path, instance_id=instance_id)
    app = build_application(settings.kafka, topology, StageMetrics(CollectorRegistry(), "acceptance"))
    return app.config


def test_every_transactional_id_starts_with_the_group_the_acls_grant_as_a_prefix(tmp_path):
    first, second = (_application_config(tmp_path, None) for _ in range(2))

    ids = [config.producer_extra_config["transactional.id"] for config in (first, second)]
    assert all(tid.startswith("jobstream-acceptance-") for tid in ids)
    assert ids[0] != ids[1]  # without an instance id, each process has its own
    assert "group.instance.id" not in first.consumer_extra_config


def test_an_instance_id_makes_a_stable_transactional_id_and_a_static_member(tmp_path):
    config = _application_config(tmp_path, "acceptance-0")

    assert config.producer_extra_config["transactional.id"] == "jobstream-acceptance-acceptance-0"
    assert config.consumer_extra_config["group.instance.id"] == "jobstream-acceptance-acceptance-0"


def test_the_application_authenticates_as_the_process_identity(tmp_path):
    connection = _application_config(tmp_path, None).broker_address.as_librdkafka_dict()

    assert connection["bootstrap.servers"] == "127.0.0.1:1"
    assert (connection["security.protocol"], connection["sasl.mechanism"]) == ("sasl_plaintext", "SCRAM-SHA-512")
    assert connection["sasl.username"] == "acceptance"
    assert connection["sasl.password"] == local_password("acceptance")

"""The generated KafkaTopics are exactly the catalog (schemas/topics.py); every committed generated file is current."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import stack.k8s_resources as k8s_resources
from schemas.topics import topic_catalog
from stack.k8s_resources import OVERLAYS, generated_files, main, render_topics, topics_path


@pytest.mark.unit
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_committed_topics_file_is_what_the_catalog_generates(overlay):
    assert topics_path(overlay).read_text() == render_topics(OVERLAYS[overlay]), "run `python -m stack.k8s_resources`"


@pytest.mark.unit
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_each_kafka_topic_has_the_catalogs_name_partitions_replicas_and_configs(overlay):
    kafka = OVERLAYS[overlay]
    topics = [doc for doc in yaml.safe_load_all(topics_path(overlay).read_text()) if doc]
    by_name = {topic["spec"]["topicName"]: topic for topic in topics}
    catalog = topic_catalog(kafka.replication_factor)

    assert len(topics) == len(by_name) == len(catalog)
    for spec in catalog:
        topic = by_name[spec.name]
        assert topic["kind"] == "KafkaTopic"
        assert topic["metadata"]["labels"] == {"strimzi.io/cluster": "jobstream"}
        assert topic["spec"]["partitions"] == spec.partitions
        assert topic["spec"]["replicas"] == kafka.replication_factor
        assert topic["spec"]["config"] == spec.config(kafka.min_insync_replicas)


@pytest.mark.unit
def test_prod_replicates_three_times_and_needs_two_in_sync():
    assert (OVERLAYS["prod"].replication_factor, OVERLAYS["prod"].min_insync_replicas) == (3, 2)
    applications = next(spec for spec in topic_catalog(3) if spec.name == "application.created")
    assert applications.config(2)["retention.ms"] == str(30 * 24 * 3600 * 1000)


@pytest.mark.unit
def test_check_mode_passes_on_the_committed_files_and_fails_on_a_stale_one(tmp_path: Path, monkeypatch, capsys):
    assert main(["--check"]) == 0

    monkeypatch.setattr(k8s_resources, "K8S_DIR", tmp_path)
    paths = list(generated_files())
    assert len(paths) == len(OVERLAYS) + 2  # the topics of each overlay, the KafkaUsers, the MariaDB users
    assert all(path.is_relative_to(tmp_path) for path in paths)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("stale\n")
    assert main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "stale" in err and all(str(path) in err for path in paths)
    assert main([]) == 0
    assert main(["--check"]) == 0
    paths[-1].write_text("edited by hand\n")
    assert main(["--check"]) == 1
    assert str(paths[-1]) in capsys.readouterr().err


@pytest.mark.timeout(1800)  # the first test to render installs kustomize (`go install`)
def test_each_overlays_kafka_cluster_holds_its_topics(rendered):
    for overlay, manifests in rendered.items():
        kafka = OVERLAYS[overlay]
        cluster = next(m for m in manifests if m["kind"] == "Kafka")
        config = cluster["spec"]["kafka"]["config"]
        pools = {m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "KafkaNodePool"}
        settings = next(
            m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"].startswith("jobstream-config")
        )

        assert config["default.replication.factor"] == kafka.replication_factor
        assert config["min.insync.replicas"] == kafka.min_insync_replicas
        assert config["offsets.topic.replication.factor"] == kafka.replication_factor
        assert config["transaction.state.log.replication.factor"] == kafka.replication_factor
        assert config["transaction.state.log.min.isr"] == kafka.min_insync_replicas
        assert pools["broker"]["replicas"] >= kafka.replication_factor
        # What the topic Job and Quix's own topics use must equal what the KafkaTopics declare.
        assert settings["data"]["JOBSTREAM_TOPIC_REPLICATION_FACTOR"] == str(kafka.replication_factor)
        assert settings["data"]["JOBSTREAM_TOPIC_MIN_INSYNC_REPLICAS"] == str(kafka.min_insync_replicas)
        topics = {m["spec"]["topicName"] for m in manifests if m["kind"] == "KafkaTopic"}
        assert topics == {spec.name for spec in topic_catalog(1)}

    prod_pools = {m["metadata"]["name"]: m["spec"] for m in rendered["prod"] if m["kind"] == "KafkaNodePool"}
    assert (prod_pools["controller"]["replicas"], prod_pools["controller"]["roles"]) == (3, ["controller"])
    assert (prod_pools["broker"]["replicas"], prod_pools["broker"]["roles"]) == (3, ["broker"])

"""The whole platform end to end, against the real Kafka, MariaDB, Redis and an SMTP capture server.

Every process runs as it does in production (`python -m ...`), with consumer groups of its own committed at the
end of their inputs and state directories of its own; the gateway runs in-process on the real app. Read models
go to a scratch database (or a private MariaDB) and a Redis db of their own, never to the shared ones.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import anyio
import pytest
import redis

from gateway.http.principal import Role
from jobstream.consumer_offsets import commit_at_end
from jobstream.settings import Settings
from schemas.avro import load_event_schemas
from stack.smtp import SmtpCapture, wait_for_mail
from state import redis_keys
from state.migrate import connect
from tests.e2e_harness import (
    APPLICATION_BODY,
    MYSQL_SINK_TOPICS,
    Webhook,
    count_ids,
    dirty_count,
    eventually,
    gateway_client,
    mysql_url,
    private_mariadb,
    register,
    rows,
    wait_for,
    with_database,
)
from tests.kafka_helpers import idempotent_producer

EVENTS = load_event_schemas()
ACCEPTANCE_INPUTS = ["job.lifecycle", "application.created", "application.stage_changed"]
SINK_REDIS_DB = 12
JOB_TITLE = "Streaming platform engineer"


@pytest.fixture
def sink_redis(settings: Settings):
    """(url, client) of a Redis db of the Redis sink's own, flushed before and after the test."""
    url = urlunsplit(urlsplit(settings.redis_url)._replace(path=f"/{SINK_REDIS_DB}"))  # its user and password kept
    client = redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)
    client.flushdb()
    try:
        yield url, client
    finally:
        client.flushdb()
        client.close()


def _decided(application_id: str, job_id: str) -> dict:
    now = datetime.now(UTC)
    return {
        "event_id": str(uuid.uuid4()),
        "application_id": application_id,
        "job_id": job_id,
        "candidate_id": str(uuid.uuid4()),
        "company_id": None,
        "outcome": "accepted",
        "reason": None,
        "submitted_at": now,
        "decided_at": now,
    }


def _produce_decided(settings: Settings, records: list[dict]) -> None:
    producer = idempotent_producer(settings.kafka)
    failures: list[object] = []
    encode = EVENTS["application_decided"].encode
    for record in records:
        producer.produce(
            "application.decided",
            encode(record),
            key=record["job_id"].encode(),
            on_delivery=lambda error, _: error and failures.append(error),
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []


@pytest.mark.anyio
@pytest.mark.timeout(150)
async def test_an_application_flows_from_http_to_mysql_redis_and_the_candidates_inbox(
    settings, scratch_database, sink_redis, services, topology_launcher, tmp_path
):
    redis_url, sink_store = sink_redis
    db = scratch_database
    address = settings.mysql
    with SmtpCapture(tmp_path / "mail") as smtp, Webhook() as webhook:
        acceptance = topology_launcher.create("acceptance", ACCEPTANCE_INPUTS)
        try:
            acceptance.start()
            services.mysql_sink(mysql_url(address, db)).start()
            services.redis_sink(redis_url).start()
            services.notifications(smtp.port, webhook.url).start()
            services.outbox_relay(mysql_url(address, db)).start()

            async with gateway_client(with_database(settings, address, db)) as client:
                employer = await register(client, "employer")
                candidate = await register(client, "candidate")
                latecomer = await register(client, "candidate")
                renamed = await client.patch(
                    "/v1/me", json={"display_name": "Grace Hopper"}, headers=candidate["headers"]
                )
                assert renamed.status_code == 200, renamed.text
                # The accounts (and the rename) reach the notifications stage's state through the outbox relay.
                await eventually(
                    lambda: rows(address, db, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL") == ((0,),),
                    30,
                    "the outbox relayed to user.registered",
                )
                posted = await client.post(
                    "/v1/jobs",
                    json={"title": JOB_TITLE, "description": "Kafka, Quix Streams, MySQL.", "location": "Remote"},
                    headers=employer["headers"],
                )
                assert posted.status_code == 202, posted.text
                job_id = posted.json()["job_id"]
                apply_url = f"/v1/jobs/{job_id}/applications"

                first, duplicate = [
                    await client.post(
                        apply_url,
                        json=APPLICATION_BODY,
                        headers={**candidate["headers"], "Idempotency-Key": f"e2e-{uuid.uuid4().hex}"},
                    )
                    for _ in range(2)
                ]
                assert (first.status_code, duplicate.status_code) == (202, 202), (first.text, duplicate.text)
                first_id, duplicate_id = first.json()["application_id"], duplicate.json()["application_id"]
                assert first_id != duplicate_id  # two keys: two events; only the topology can tell them apart

                def candidates_rows() -> tuple:
                    return rows(
                        address,
                        db,
                        "SELECT application_id, status, rejection_reason FROM applications"
                        " WHERE job_id = %s AND candidate_id = %s",
                        (job_id, candidate["user"]["user_id"]),
                    )

                await eventually(candidates_rows, 60, "the candidate's decided application in MySQL")
                moved = await client.post(
                    f"/v1/applications/{candidates_rows()[0][0]}/stage",
                    json={"stage": "interview"},
                    headers=employer["headers"],
                )
                assert moved.status_code == 202, moved.text

                closed = await client.post(f"/v1/jobs/{job_id}/close", headers=employer["headers"])
                assert closed.status_code == 202, closed.text
                late = await client.post(apply_url, json=APPLICATION_BODY, headers=latecomer["headers"])
                assert late.status_code == 202, late.text
                late_id = late.json()["application_id"]

                def late_row() -> tuple:
                    return rows(
                        address,
                        db,
                        "SELECT application_id, status, rejection_reason FROM applications WHERE application_id = %s",
                        (late_id,),
                    )

                await eventually(late_row, 45, "the later application's decision in MySQL")

            # One job, so one partition: the late application was decided, and sunk, after both earlier ones.
            assert late_row() == ((late_id, "rejected", "job_closed"),)
            assert candidates_rows() == ((first_id, "accepted", None),)
            assert rows(
                address, db, "SELECT COUNT(*) FROM applications WHERE application_id = %s", (duplicate_id,)
            ) == ((0,),)
            await eventually(
                lambda: rows(address, db, "SELECT status FROM jobs WHERE job_id = %s", (job_id,)) == (("closed",),),
                30,
                "the job closed in MySQL",
            )

            expected_counters = {"applications": "2", "accepted": "1", "rejected": "1", "rejected:job_closed": "1"}
            seen: dict[str, str] = {}

            def counters_match() -> bool:
                seen.clear()
                seen.update(sink_store.hgetall(redis_keys.job_counters(job_id)))
                return seen == expected_counters

            try:
                await eventually(counters_match, 30, "the job's counters in Redis")
            except AssertionError as timeout:
                raise AssertionError(f"{timeout}; the counters were {seen}") from None
            accepted = sink_store.hgetall(redis_keys.application(first_id))
            assert (accepted["status"], accepted["job_id"], accepted["candidate_id"]) == (
                "accepted",
                job_id,
                candidate["user"]["user_id"],
            )
            assert sink_store.zrange(redis_keys.candidate_applications(candidate["user"]["user_id"]), 0, -1) == [
                first_id
            ]
            assert not sink_store.exists(redis_keys.application(duplicate_id))
            rejected = sink_store.hgetall(redis_keys.application(late_id))
            assert (rejected["status"], rejected["reason"]) == ("rejected", "job_closed")
            await eventually(
                lambda: sink_store.hget(redis_keys.job_detail(job_id), "status") == "closed",
                30,
                "the job closed in Redis",
            )

            def to(address_: str):
                return lambda message: address_ in str(message["To"])

            # Addresses and names come from user.registered (the rename included), never an id.
            mails = wait_for_mail(smtp.directory, to(candidate["email"]), count=2, timeout_s=45)
            by_subject = {str(m["Subject"]).strip(): m for m in mails}
            received = by_subject[f"We received your application for {JOB_TITLE}"]
            interview = by_subject[f"Your application for {JOB_TITLE} has moved to the interview stage"]
            for mail in (received, interview):
                body = mail.get_content()
                assert body.splitlines()[0] == "Hello Grace Hopper,", body
                assert JOB_TITLE in body and candidate["user"]["user_id"] not in body and job_id not in body
            [refusal] = wait_for_mail(smtp.directory, to(latecomer["email"]), timeout_s=45)
            assert refusal["Subject"] == f"Your application for {JOB_TITLE}"
            assert refusal.get_content().splitlines()[0] == "Hello A candidate,"
            assert "the job is closed" in refusal.get_content()
            # The duplicate was never decided, so it was never notified: still two messages for the candidate.
            assert len(wait_for_mail(smtp.directory, to(candidate["email"]), count=3, timeout_s=2)) == 2
        finally:
            acceptance.stop()


@pytest.mark.timeout(150)
def test_a_mysql_sink_killed_mid_batch_then_restarted_writes_every_row_exactly_once(
    settings, scratch_database, services
):
    address, db = settings.mysql, scratch_database
    url = mysql_url(address, db)
    group = f"test-e2e-crash-{uuid.uuid4().hex[:10]}"
    commit_at_end(settings.kafka, group, MYSQL_SINK_TOPICS)
    env = {"JOBSTREAM_SINKS_BATCH_MAX_MESSAGES": "500"}
    jobs = [str(uuid.uuid4()) for _ in range(8)]
    blocked_job = jobs[0]
    before = [_decided(str(uuid.uuid4()), jobs[1 + n % 7]) for n in range(1500)]
    after = [_decided(str(uuid.uuid4()), jobs[n % 8]) for n in range(2500)]
    ids = [record["application_id"] for record in before + after]

    def landed() -> int:
        return count_ids(address, db, "applications", "application_id", ids)[0]

    # Up to a point: the first 1500 rows written and their offsets committed (a clean stop commits).
    first = services.mysql_sink(url, group=group, **env).start()
    _produce_decided(settings, before)
    wait_for(lambda: landed() == len(before), 60, "the first 1500 rows")
    first.stop()
    assert first.process is not None and first.process.returncode == 0, first.log_tail()

    # Hold the funnel row of one job: the sink's batch touching that job writes its application rows, then waits
    # for this lock, so the kill lands inside a batch whose rows are written but not committed.
    with connect(address, db) as locker, locker.cursor() as cursor:
        cursor.execute("INSERT INTO job_funnel (job_id) VALUES (%s)", (blocked_job,))
        locker.begin()
        cursor.execute("SELECT * FROM job_funnel WHERE job_id = %s FOR UPDATE", (blocked_job,))
        _produce_decided(settings, after)
        # A long commit interval: the sink reads the backlog into big batches before it writes the first.
        crashing = services.mysql_sink(url, group=group, JOBSTREAM_SINKS_COMMIT_INTERVAL_MS="2000", **env).start()

        def mid_batch() -> tuple[int, int] | None:
            committed, written = landed(), dirty_count(address, db, "applications", "application_id", ids)
            return (committed, written) if written - committed >= 50 else None

        committed_at_kill, written_at_kill = wait_for(mid_batch, 30, "the sink to write a batch it cannot commit")
        crashing.kill()
        locker.rollback()

    assert crashing.process is not None and crashing.process.returncode == -9
    assert len(before) <= committed_at_kill < written_at_kill <= len(ids)
    left = landed()
    assert left < len(ids), "the kill left nothing to redeliver"

    # The killed member holds its partitions until its session times out (JOBSTREAM_SINKS_SESSION_TIMEOUT_MS,
    # 10 s), so the restarted sink may wait that long, plus its start, before it reads anything.
    services.mysql_sink(url, group=group, **env).start()
    wait_for(lambda: landed() == len(ids), 40, "every row after the restart", interval_s=0.5)
    assert count_ids(address, db, "applications", "application_id", ids) == (len(ids), len(ids))
    written_ids = {
        row[0] for row in rows(address, db, "SELECT application_id FROM applications WHERE job_id IN %s", (jobs,))
    }
    assert written_ids == set(ids)
    truth = Counter(record["job_id"] for record in before + after)
    funnel = rows(address, db, "SELECT job_id, applications, accepted FROM job_funnel WHERE job_id IN %s", (jobs,))
    assert {job: (applications, accepted) for job, applications, accepted in funnel} == {
        job: (count, count) for job, count in truth.items()
    }
    print(f"kill at {committed_at_kill} committed / {written_at_kill} written of {len(ids)}; {left} after the kill")


@pytest.mark.anyio
@pytest.mark.timeout(170)
async def test_with_mysql_down_for_30_s_the_gateway_keeps_answering_202_and_every_application_lands_after(
    settings, services, topology_launcher, mint_token, tmp_path
):
    with private_mariadb(settings, tmp_path / "mariadb") as mariadb:
        address, db = mariadb.address, mariadb.database
        acceptance = topology_launcher.create("acceptance", ACCEPTANCE_INPUTS)
        try:
            acceptance.start()
            # Short pauses on backpressure, so recovery is seen soon after MySQL is back.
            sink = services.mysql_sink(mariadb.url(), JOBSTREAM_SINKS_BACKPRESSURE_S="2").start()

            def decided(application_ids: list[str]) -> int:
                ((count,),) = rows(
                    address,
                    db,
                    "SELECT COUNT(*) FROM applications WHERE status = 'accepted' AND application_id IN %s",
                    (application_ids,),
                )
                return int(count)

            async with gateway_client(with_database(settings, address, db)) as client:
                employer = await register(client, "employer")
                posted = await client.post(
                    "/v1/jobs",
                    json={"title": JOB_TITLE, "description": "Survives outages.", "location": "Remote"},
                    headers=employer["headers"],
                )
                assert posted.status_code == 202, posted.text
                apply_url = f"/v1/jobs/{posted.json()['job_id']}/applications"

                async def apply() -> tuple[int, str | None]:
                    # A new candidate each time (one application per candidate per job); tokens need no MySQL.
                    _, headers = mint_token(Role.CANDIDATE)
                    response = await client.post(apply_url, json=APPLICATION_BODY, headers=headers)
                    body = response.json() if response.status_code == 202 else {}
                    return response.status_code, body.get("application_id")

                status, warmup_id = await apply()
                assert status == 202
                await eventually(lambda: decided([warmup_id]) == 1, 60, "the first application in the private MySQL")

                mariadb.down()
                assert not mariadb.answers()
                ready = await client.get("/readyz")
                assert (ready.status_code, ready.json()["checks"]["mysql"]) == (503, "down")

                statuses: Counter[int] = Counter()
                accepted_ids: list[str] = []
                outage_end = time.monotonic() + 30
                while time.monotonic() < outage_end:
                    status, application_id = await apply()
                    statuses[status] += 1
                    if application_id is not None:
                        accepted_ids.append(application_id)
                    await anyio.sleep(0.2)
                assert not mariadb.answers(), "MySQL came back during the outage"
                assert statuses[202] >= 30 and set(statuses) == {202}, statuses

                mariadb.up()
                # Backpressure, not a crash: the sink that saw MySQL go away is the one that writes the rows.
                assert sink.alive(), f"the MySQL sink died while MySQL was down:\n{sink.log_tail()}"
                landed = await eventually(
                    lambda: decided(accepted_ids) == len(accepted_ids),
                    60,
                    f"the {len(accepted_ids)} applications accepted during the outage in MySQL",
                    interval_s=1,
                )
                assert landed
            assert count_ids(address, db, "applications", "application_id", accepted_ids) == (
                len(accepted_ids),
                len(accepted_ids),
            )
        finally:
            # Before the private server goes away, so no process is left retrying against a closed port.
            acceptance.stop()
            services.close()

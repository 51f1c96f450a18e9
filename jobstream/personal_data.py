"""What personal data Jobstream keeps, and where: `python -m jobstream.personal_data` prints the report.

Declared once, per store: the personal fields of each event (every topic that carries the event follows from the
topic catalog, with its retention and the reason for it), the Quix state that holds them (and so its changelog
topic), the MySQL columns, the Redis keys and the files. `tests/jobstream/test_personal_data.py` checks each
declaration against the schemas, the migrations and the key catalog, and that nothing that looks personal is left
out. Ids (`candidate_id`, `user_id`, ...) are pseudonymous and not listed: they identify a person only together with
the places below.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from jobstream.identities import READ_MODEL_TABLES
from schemas.topics import DAY_MS, DEAD_LETTER, READ_MODEL_SNAPSHOT, topic_catalog


@dataclass(frozen=True)
class Personal:
    """Personal fields of one event or table: field -> what it holds; whose they are; how long they stay."""

    fields: dict[str, str]
    whose: str
    kept: str = ""


# Event -> its personal fields, in any version of its schema. Every topic carrying the event is listed.
EVENTS: dict[str, Personal] = {
    "user_registered": Personal(
        {"email": "the account's email address", "display_name": "the name shown and emailed"}, "every account"
    ),
    "application_created": Personal(
        {
            "cover_letter": "the candidate's free text",
            "resume_url": "a link to the candidate's résumé",
            "contact_email": "the candidate's email address when they applied",
        },
        "every candidate who applied",
    ),
    "notification_requested": Personal(
        {
            "address": "the recipient's email address, phone number or device token",
            "params": "the message's values: the recipient's display name, the job's title",
        },
        "every recipient",
    ),
    "notification_outcome": Personal({"error": "the provider's error, which may quote the address"}, "recipients"),
}
# MySQL table -> its personal columns. Nothing deletes these rows yet.
TABLES: dict[str, Personal] = {
    "users": Personal(
        {
            "email": "the account's email address",
            "display_name": "the name shown and emailed",
            "password_hash": "the password's argon2id hash",
        },
        "every account",
        "as long as the account",
    ),
    "invitations": Personal({"email": "the invitee's email address"}, "invitees", "forever, expired or not"),
    "outbox": Personal(
        {"payload": "user.registered events (email, display name), kept after they are relayed"},
        "every account",
        "forever",
    ),
    "notification_log": Personal(
        {"error": "the provider's error, which may quote the address"}, "recipients", "as long as the read model"
    ),
}


@dataclass(frozen=True)
class Place:
    """One place personal data lives."""

    store: str
    where: str
    holds: str
    whose: str
    kept: str


# Quix state stores holding personal fields; each is also in its changelog topic, kept as long as the state.
STATE = (
    Place(
        "kafka",
        "changelog__notifications--* (the notifications stage's state, its default group)",
        "email, display_name: the latest user.registered of each account, the stream-table join",
        "every account",
        "compacted: each account's latest, for as long as the account",
    ),
)
REDIS_KEYS = (
    Place(
        "redis",
        "jobstream:cache:profiles:{user_id}",
        "the profile: email, display name, role",
        "users who called the API lately",
        "JOBSTREAM_PROFILE_CACHE_TTL_S (30 minutes)",
    ),
    Place(
        "redis",
        "jobstream:ratelimit:{limit}",
        "client IP addresses (login-ip, per-address limits); emails only as truncated SHA-256",
        "anyone who called the API lately",
        "the limit's window",
    ),
)
FILES = (
    Place(
        "files",
        "the SMTP capture (`python -m stack.smtp`): `<JOBSTREAM_LOCAL_DIR>/mail/*.eml`, local stacks only",
        "every email sent: address, display name, job title",
        "every recipient",
        "until the local stack's folder is deleted; in production, the mail provider's logs instead",
    ),
)


def kafka_places(replication_factor: int = 1) -> tuple[Place, ...]:
    """Every catalog topic carrying a personal event, with its retention; then dead letters and Quix state."""
    places = []
    for spec in topic_catalog(replication_factor):
        personal = EVENTS.get(spec.event or "")
        if personal is not None:
            places.append(Place("kafka", spec.name, ", ".join(personal.fields), personal.whose, _kept(spec.name)))
    places.append(
        Place(
            "kafka",
            DEAD_LETTER,
            "byte-for-byte copies of poisoned messages of any topic above",
            "whoever the copied messages name",
            _kept(DEAD_LETTER),
        )
    )
    copied = sorted(set(TABLES) & set(READ_MODEL_TABLES))
    places.append(
        Place(
            "kafka",
            READ_MODEL_SNAPSHOT,
            "copies of the read-model columns above: "
            + ", ".join(f"{t}.{c}" for t in copied for c in TABLES[t].fields),
            "as in those tables",
            _kept(READ_MODEL_SNAPSHOT),
        )
    )
    return (*places, *STATE)


def places() -> tuple[Place, ...]:
    """Every place, by store: Kafka, MySQL, Redis, files."""
    mysql = tuple(
        Place("mysql", table, ", ".join(personal.fields), personal.whose, personal.kept)
        for table, personal in TABLES.items()
    )
    return (*kafka_places(), *mysql, *REDIS_KEYS, *FILES)


def _kept(topic: str) -> str:
    spec = next(spec for spec in topic_catalog(1) if spec.name == topic)
    if spec.cleanup_policy == "compact":
        return f"compacted, forever: {spec.retention_reason}"
    return f"{spec.retention_ms // DAY_MS} days: {spec.retention_reason}"


def report() -> str:
    """The places as a Markdown table."""
    lines = [
        "| store | where | holds | whose | kept |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {p.store} | {p.where} | {p.holds} | {p.whose} | {p.kept} |" for p in places()),
        "",
        "Not personal: the other read-model columns (ids, statuses, stages, counts, job texts) and the analytics "
        "windows, job.lifecycle and job.viewed.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jobstream.personal_data", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    print(report())


if __name__ == "__main__":
    main()

"""``python -m stack.demo``: seed a running platform through its public API and show the decisions arrive.

Registers two employers and a dozen candidates, posts jobs (one with room for only two applicants),
sends a stream of applications (with a retried request and a duplicate among them), closes a job and
applies once more, then polls each candidate's applications until the platform decided every one.
Everything goes through the gateway over HTTP, exactly as a front end would.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from typing import Any

import httpx

from jobstream.settings import Settings

PASSWORD = "demo password, long enough"
_JOBS = [
    ("Stream processing engineer", "Kafka, Quix Streams and exactly-once pipelines.", "Berlin", ["python", "kafka"]),
    ("Site reliability engineer", "Keep brokers, databases and caches healthy.", "Remote", ["sre", "linux"]),
    ("Data analyst", "Funnels, conversion and windowed aggregates.", "Lisbon", ["sql", "analytics"]),
]


class Demo:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """One request, waiting out a 429 or 503 for as long as its Retry-After says."""
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        for _ in range(10):
            response = self._client.request(method, path, headers=headers, **kwargs)
            if response.status_code not in (429, 503):
                return response
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return response

    def register(self, role: str, name: str) -> dict[str, Any]:
        body = {
            "email": f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@demo.jobstream.local",
            "password": PASSWORD,
            "display_name": name,
            "role": role,
        }
        response = self.call("POST", "/v1/auth/register", json=body)
        response.raise_for_status()
        return response.json()


def run(base_url: str, candidates: int, timeout_s: float) -> int:
    started = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=10) as client:
        demo = Demo(client)
        employers = [demo.register("employer", name) for name in ("Acme Streams", "Globex Data")]
        jobs = []
        for index, (title, description, location, tags) in enumerate(_JOBS):
            employer = employers[index % len(employers)]
            body = {"title": title, "description": description, "location": location, "tags": tags}
            if index == 0:
                body["max_applications"] = 2
            response = demo.call("POST", "/v1/jobs", employer["access_token"], json=body)
            response.raise_for_status()
            jobs.append((response.json()["job_id"], employer))
            print(f"job       {title!r} posted by {employer['user']['display_name']}")
        people = [demo.register("candidate", f"Candidate {n}") for n in range(1, candidates + 1)]
        print(f"users     {len(employers)} employers, {len(people)} candidates registered")

        # Jobs need a moment to reach the acceptance topology before applications do.
        time.sleep(2)
        sent: dict[str, str] = {}
        replays_answered_alike = 0
        rng = random.Random(7)
        for person in people:
            for job_id, _ in rng.sample(jobs, 2):
                key = str(uuid.uuid4())
                body = {"cover_letter": "I would love to join.", "resume_url": "https://cv.example.com/demo.pdf"}
                first = demo.call(
                    "POST",
                    f"/v1/jobs/{job_id}/applications",
                    person["access_token"],
                    json=body,
                    headers={"Idempotency-Key": key},
                )
                retry = demo.call(
                    "POST",
                    f"/v1/jobs/{job_id}/applications",
                    person["access_token"],
                    json=body,
                    headers={"Idempotency-Key": key},
                )
                if first.status_code == 202:
                    sent[first.json()["application_id"]] = person["access_token"]
                    replays_answered_alike += retry.json().get("application_id") == first.json()["application_id"]
        print(
            f"apply     {len(sent)} applications accepted by the gateway; each was sent twice with one "
            f"Idempotency-Key and {replays_answered_alike} retries got the same application id back"
        )

        closed_job, owner = jobs[1]
        demo.call("POST", f"/v1/jobs/{closed_job}/close", owner["access_token"]).raise_for_status()
        time.sleep(2)
        late = demo.register("candidate", "Late Candidate")
        response = demo.call(
            "POST",
            f"/v1/jobs/{closed_job}/applications",
            late["access_token"],
            json={"cover_letter": "Am I too late?", "resume_url": "https://cv.example.com/l.pdf"},
        )
        if response.status_code == 202:
            sent[response.json()["application_id"]] = late["access_token"]
        print("close     one job closed, one more application sent to it")

        decided = _wait_for_decisions(demo, sent, timeout_s)
    by_outcome: dict[str, int] = {}
    for row in decided.values():
        label = row["status"] if row["status"] != "rejected" else f"rejected ({row.get('rejection_reason')})"
        by_outcome[label] = by_outcome.get(label, 0) + 1
    for label, count in sorted(by_outcome.items()):
        print(f"decided   {count:>3} {label}")
    missing = len(sent) - len(decided)
    print(f"done      {len(decided)}/{len(sent)} decided and visible in MySQL in {time.monotonic() - started:.1f}s")
    return 1 if missing else 0


def _wait_for_decisions(demo: Demo, sent: dict[str, str], timeout_s: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    decided: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(decided) < len(sent):
        for token in set(sent.values()):
            response = demo.call("GET", "/v1/me/applications?limit=50", token)
            response.raise_for_status()
            for row in response.json()["items"]:
                if row["application_id"] in sent and row["status"] != "pending":
                    decided[row["application_id"]] = row
        time.sleep(0.5)
    return decided


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m stack.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://{settings.gateway.host}:{settings.gateway.port}")
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every decision")
    args = parser.parse_args(argv)
    try:
        return run(args.url, args.candidates, args.timeout)
    except httpx.HTTPError as error:
        print(f"demo: {error} (is the platform running? start it with `make run`)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

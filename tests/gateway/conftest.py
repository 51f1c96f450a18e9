"""Fixtures of the gateway tests that read what the sinks wrote."""

import uuid
from datetime import datetime, timedelta

import pytest

T0 = datetime(2026, 6, 1, 9, 0, 0, 123000)


@pytest.fixture
def read_models(mysql):
    """Inserts jobs, applications, stage history and funnels with fresh ids; deletes exactly those rows after."""
    inserted: list[tuple[str, str, str]] = []

    def insert(table: str, row: dict, key: str) -> None:
        columns = ", ".join(row)
        with mysql.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values())
            )
        mysql.commit()
        inserted.append((table, key, row[key]))

    class ReadModels:
        def job(self, company_id: str, minute: int, status: str = "open", **funnel: int) -> str:
            job_id = str(uuid.uuid4())
            at = T0 + timedelta(minutes=minute)
            job = {"job_id": job_id, "company_id": company_id, "title": f"Job {minute}", "description": "D"}
            insert(
                "jobs",
                {**job, "location": "Lyon", "status": status, "created_at": at, "updated_at": at, "version": 1},
                "job_id",
            )
            if funnel:
                insert("job_funnel", {"job_id": job_id, **funnel}, "job_id")
            return job_id

        def application(self, job_id: str, minute: int, status: str = "accepted", stage: str = "submitted", **kw):
            application_id = kw.pop("application_id", str(uuid.uuid4()))
            at = T0 + timedelta(minutes=minute)
            row = {
                "application_id": application_id,
                "job_id": job_id,
                "candidate_id": kw.pop("candidate_id", str(uuid.uuid4())),
                "status": status,
                "rejection_reason": "job_full" if status == "rejected" else None,
                "stage": stage,
                "submitted_at": at,
                "decided_at": at + timedelta(seconds=1),
                "updated_at": at + timedelta(seconds=1),
                "version": 1,
                **kw,
            }
            insert("applications", row, "application_id")
            return application_id

        def stage(self, application_id: str, stage: str, minute: int) -> None:
            row = {"application_id": application_id, "stage": stage, "changed_at": T0 + timedelta(minutes=minute)}
            insert("application_stage_history", row, "application_id")

    yield ReadModels()
    with mysql.cursor() as cursor:
        for table, key, value in reversed(inserted):
            cursor.execute(f"DELETE FROM {table} WHERE {key} = %s", (value,))
    mysql.commit()

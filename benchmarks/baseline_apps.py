"""Baseline servers, served exactly like the gateway (`gateway.http.server.serve`).

- ``bare``: the same route answering 202 with no work at all: the ceiling of Starlette + uvicorn on this machine.
- ``naive``: the same route INSERTing each application synchronously into MySQL (a pooled connection per request,
  autocommit), the design the gateway avoids. A harness mode only, writing to a scratch table in a scratch database.

Run with ``python -m benchmarks.baseline_apps bare|naive --port N [--database D --table T]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import pymysql
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.http.server import serve
from jobstream.mysql import MySQLPool
from jobstream.settings import MySQLAddress, Settings

APPLY_PATH = "/v1/jobs/{job_id}/applications"
# Starlette's worker threads (anyio's default limit): more connections than threads could never be used.
NAIVE_POOL_SIZE = 40


def bare_app() -> Starlette:
    """202 for every POST, after reading the body, like the gateway's answer in shape."""

    async def apply(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"application_id": str(uuid.uuid4()), "status": "pending"}, status_code=202)

    return Starlette(routes=[Route(APPLY_PATH, apply, methods=["POST"])])


def naive_app(address: MySQLAddress, database: str, table: str) -> Starlette:
    """INSERT + COMMIT per request on a pooled connection, in Starlette's worker threads (40, as many as the pool)."""
    pool = MySQLPool(address, NAIVE_POOL_SIZE, timeout_s=30, database=database)
    sql = (
        f"INSERT INTO {table} (application_id, job_id, cover_letter, resume_url, submitted_at)"
        " VALUES (%s, %s, %s, %s, %s)"
    )

    def insert(application_id: str, job_id: str, body: dict[str, str]) -> None:
        with pool.connection() as connection:
            with connection.cursor() as cursor:
                cursor.execute(sql, (application_id, job_id, body["cover_letter"], body["resume_url"], time.time()))
            connection.commit()

    async def apply(request: Request) -> JSONResponse:
        body = await request.json()
        application_id = str(uuid.uuid4())
        await run_in_threadpool(insert, application_id, request.path_params["job_id"], body)
        return JSONResponse({"application_id": application_id, "status": "pending"}, status_code=202)

    return Starlette(routes=[Route(APPLY_PATH, apply, methods=["POST"])])


def create_naive_table(connection: pymysql.Connection, table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (application_id CHAR(36) CHARACTER SET ascii PRIMARY KEY,"
            " job_id CHAR(36) CHARACTER SET ascii NOT NULL, cover_letter TEXT NOT NULL,"
            " resume_url VARCHAR(2048) NOT NULL, submitted_at DOUBLE NOT NULL) ENGINE=InnoDB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline_apps")
    parser.add_argument("mode", choices=("bare", "naive"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database")
    parser.add_argument("--table", default="naive_applications")
    args = parser.parse_args(argv)
    if args.mode == "bare":
        app = bare_app()
    else:
        if not args.database:
            parser.error("naive needs --database (a scratch database the harness created)")
        app = naive_app(Settings.from_env().mysql, args.database, args.table)
    serve(app, "127.0.0.1", args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())

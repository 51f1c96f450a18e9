"""Redis for the local stack: the configured server when it answers, else a private redis-server.

A private server knows only the catalog's ACL users (stack/identities.py): `default` is off, so a client that does
not authenticate is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from jobstream.settings import RedisAddress
from stack import processes
from stack.errors import StackError
from stack.identities import apply_redis_users, redis_users
from stack.packages import find_or_install

_LOOPBACK = {"127.0.0.1", "localhost"}


@dataclass(frozen=True)
class RedisHealth:
    version: str
    started: bool


class LocalRedis:
    def __init__(self, address: RedisAddress, directory: Path) -> None:
        self.address = address
        self.directory = directory
        self.pid_file = directory / "redis.pid"
        self.log_file = directory / "redis.log"

    def up(self) -> RedisHealth:
        version = self.version()
        if version is not None:
            if processes.read_pid(self.pid_file) is not None:
                with self._client() as client:
                    apply_redis_users(client)
            return RedisHealth(version, started=False)
        if processes.read_pid(self.pid_file) is not None:
            raise StackError(
                f"the stack's Redis at {self.address.host}:{self.address.port} refuses the {self.address.username} "
                "user (started before service identities?); restart it with `make down`"
            )
        if self.address.host not in _LOOPBACK:
            raise StackError(f"Redis at {self.address.host}:{self.address.port} does not answer")
        processes.ensure_port_free(self.address.port, "Redis")
        binary = find_or_install("redis-server", "redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            str(binary),
            "--port",
            str(self.address.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        for name, rules in redis_users().items():
            command += ["--user", name, *rules]
        processes.spawn(command, self.pid_file, self.log_file)
        processes.wait_until(lambda: self.version() is not None, "Redis", 30, self.log_file)
        return RedisHealth(self.version() or "", started=True)

    def down(self) -> bool:
        return bool(processes.stop([self.pid_file]))

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host=self.address.host,
            port=self.address.port,
            db=self.address.db,
            username=self.address.username,
            password=self.address.password,
            socket_timeout=1,
            socket_connect_timeout=1,
        )

    def version(self) -> str | None:
        client = self._client()
        try:
            return str(client.info("server")["redis_version"])
        except redis.RedisError:
            return None
        finally:
            client.close()

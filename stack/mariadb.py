"""MariaDB for the local stack: the configured server when it answers, else a private mariadbd.

A private server keeps its data under the stack's folder; its admin account is the OS user over the
unix socket, and it is given the application user and database from JOBSTREAM_MYSQL_URL.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pymysql

from jobstream.settings import MySQLAddress
from stack import processes
from stack.errors import StackError
from stack.packages import find_or_install

_LOOPBACK = {"127.0.0.1", "localhost"}


@dataclass(frozen=True)
class MariaDBHealth:
    version: str
    started: bool


class LocalMariaDB:
    def __init__(self, address: MySQLAddress, directory: Path) -> None:
        self.address = address
        self.directory = directory
        self.data_dir = directory / "data"
        self.socket = directory / "mysqld.sock"
        self.pid_file = directory / "mariadb.pid"
        self.log_file = directory / "mariadb.log"

    def up(self) -> MariaDBHealth:
        version = self.version()
        if version is not None:
            return MariaDBHealth(version, started=False)
        if processes.read_pid(self.pid_file) is None and processes.is_listening(self.address.host, self.address.port):
            raise StackError(
                f"a MySQL server answers at {self.address.host}:{self.address.port} but refuses "
                f"{self.address.user}@{self.address.database}; fix JOBSTREAM_MYSQL_URL or its grants "
                f"(the port is held by {processes.port_holder(self.address.port)})"
            )
        if self.address.host not in _LOOPBACK:
            raise StackError(f"MySQL at {self.address.host}:{self.address.port} does not answer")
        if processes.read_pid(self.pid_file) is None:
            self._start()
        self._provision()
        version = self.version()
        if version is None:
            raise StackError(f"MariaDB started but refuses {self.address.user}; see {self.log_file}")
        return MariaDBHealth(version, started=True)

    def down(self) -> bool:
        return bool(processes.stop([self.pid_file], grace_s=60))

    @property
    def private(self) -> bool:
        """Whether this is the stack's own server (whose admin account the stack may use)."""
        return processes.read_pid(self.pid_file) is not None

    def run_as_admin(self, statements: list[str]) -> None:
        """Run statements as the server's OS-user admin (user and grant management), in one session."""
        self._admin(";".join(statements))

    def version(self) -> str | None:
        try:
            connection = pymysql.connect(
                host=self.address.host,
                port=self.address.port,
                user=self.address.user,
                password=self.address.password,
                database=self.address.database,
                connect_timeout=2,
            )
        except pymysql.MySQLError:
            return None
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                return str(cursor.fetchone()[0])
        finally:
            connection.close()

    def _start(self) -> None:
        processes.ensure_port_free(self.address.port, "MariaDB")
        server = find_or_install("mariadbd", "mariadb-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        user = getpass.getuser()
        if not (self.data_dir / "mysql").exists():
            install_db = find_or_install("mariadb-install-db", "mariadb-server")
            result = subprocess.run(
                [
                    str(install_db),
                    "--no-defaults",
                    f"--datadir={self.data_dir}",
                    f"--user={user}",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                output = result.stdout[-2000:] + result.stderr[-2000:]
                raise StackError(f"mariadb-install-db failed:\n{output}")
        command = [
            str(server),
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--socket={self.socket}",
            f"--port={self.address.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.directory / 'mariadbd.pid'}",
            f"--log-error={self.log_file}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--transaction-isolation=READ-COMMITTED",
            "--innodb-buffer-pool-size=256M",
            "--max-connections=300",
        ]
        if os.geteuid() == 0:
            command.append("--user=root")
        processes.spawn(command, self.pid_file, self.directory / "mariadbd.stdout.log")
        processes.wait_until(lambda: self._admin("SELECT 1", check=False), "MariaDB", 60, self.log_file)

    def _provision(self) -> None:
        a = self.address
        for host in ("localhost", "127.0.0.1"):
            self._admin(
                f"CREATE OR REPLACE USER '{a.user}'@'{host}' IDENTIFIED BY '{_escape(a.password)}';"
                f"GRANT ALL PRIVILEGES ON `{a.database}%`.* TO '{a.user}'@'{host}';"
            )
        self._admin(f"CREATE DATABASE IF NOT EXISTS `{a.database}`")

    def _admin(self, sql: str, check: bool = True) -> bool:
        """Run SQL as the server's OS-user admin over the unix socket."""
        result = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", getpass.getuser(), "-e", sql],
            capture_output=True,
            text=True,
        )
        if check and result.returncode != 0:
            raise StackError(f"MariaDB admin statement failed: {result.stderr.strip()}")
        return result.returncode == 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")

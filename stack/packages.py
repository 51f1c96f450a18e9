"""Install a missing server from Debian's packages, the one way the local stack gets MariaDB and Redis."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stack.errors import StackError


def find_or_install(binary: str, package: str, search: tuple[str, ...] = ("/usr/sbin", "/usr/bin")) -> Path:
    found = _find(binary, search)
    if found is not None:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise StackError(
            f"{binary} is not installed: install the Debian package {package} (or point Jobstream at "
            "your own server through its URL setting) and retry"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise StackError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    found = _find(binary, search)
    if found is None:
        raise StackError(f"the Debian package {package} installed no {binary}")
    return found


def _find(binary: str, search: tuple[str, ...]) -> Path | None:
    on_path = shutil.which(binary)
    if on_path is not None:
        return Path(on_path)
    for directory in search:
        candidate = Path(directory) / binary
        if candidate.exists():
            return candidate
    return None

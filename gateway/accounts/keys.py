"""The Ed25519 key pair that signs and verifies access tokens, read from PEM files.

Production sets ``JOBSTREAM_JWT_PRIVATE_KEY_FILE`` and ``JOBSTREAM_JWT_PUBLIC_KEY_FILE``. Without them (dev, tests)
a pair is generated once into ``<local_dir>/jwt/`` and reused by every process on the machine afterwards.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from jobstream.errors import JobstreamError
from jobstream.settings import AccountSettings


class KeyFileError(JobstreamError):
    """A JWT key file is missing, unreadable, not Ed25519, or does not match its pair."""


@dataclass(frozen=True)
class SigningKeys:
    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey


def load_signing_keys(settings: AccountSettings) -> SigningKeys:
    """The configured key pair; with dev keys, generates it first if it does not exist yet."""
    if settings.jwt_dev_keys:
        _ensure_dev_keys(settings.jwt_private_key_file, settings.jwt_public_key_file)
    private_key = _read_private(settings.jwt_private_key_file)
    public_key = _read_public(settings.jwt_public_key_file)
    if _raw(private_key.public_key()) != _raw(public_key):
        raise KeyFileError(f"{settings.jwt_public_key_file} is not the public half of {settings.jwt_private_key_file}")
    return SigningKeys(private_key, public_key)


def _ensure_dev_keys(private_path: Path, public_path: Path) -> None:
    private_path.parent.mkdir(parents=True, exist_ok=True)
    if not private_path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Several processes may start at once: link() publishes one complete file and refuses the others.
        temporary = _write_temporary(private_path.parent, pem)
        try:
            os.link(temporary, private_path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    if not public_path.exists():
        public_pem = (
            _read_private(private_path)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        os.replace(_write_temporary(public_path.parent, public_pem), public_path)


def _write_temporary(directory: Path, data: bytes) -> Path:
    descriptor, name = tempfile.mkstemp(dir=directory, prefix=".key-")
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(name, 0o600)
    return Path(name)


def _read_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, expected an Ed25519 private key")
    return key


def _read_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError as error:
        raise KeyFileError(f"{path} is not a PEM public key: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, expected an Ed25519 public key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"cannot read JWT key file {path}: {error.strerror}") from None


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

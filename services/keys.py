"""Signing and encryption keys: from the environment, or (outside production) made once under data/."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.platform.config import Settings


@dataclass(frozen=True)
class Keys:
    jwt_private: Ed25519PrivateKey
    jwt_public: Ed25519PublicKey
    pii_key: bytes


def _load_private(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError("JWT_PRIVATE_KEY must be an Ed25519 private key in PEM")
    return key


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_keys(settings: Settings) -> Keys:
    """Keys from JWT_PRIVATE_KEY / PII_KEY; outside production, missing ones are kept in data/keys.json."""
    jwt_pem, pii_b64 = settings.jwt_private_key, settings.pii_key
    if jwt_pem is None or pii_b64 is None:
        if settings.is_production:
            raise RuntimeError("JWT_PRIVATE_KEY and PII_KEY must be set in production")
        path = settings.data_dir / "keys.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        if "jwt_private_key" not in stored or "pii_key" not in stored:
            stored.setdefault("jwt_private_key", _pem(Ed25519PrivateKey.generate()))
            stored.setdefault("pii_key", base64.b64encode(secrets.token_bytes(32)).decode())
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(stored, fh)
        jwt_pem = jwt_pem or stored["jwt_private_key"]
        pii_b64 = pii_b64 or stored["pii_key"]
    private = _load_private(jwt_pem)
    pii_key = base64.b64decode(pii_b64)
    if len(pii_key) != 32:
        raise RuntimeError("PII_KEY must be 32 bytes, base64-encoded")
    return Keys(jwt_private=private, jwt_public=private.public_key(), pii_key=pii_key)

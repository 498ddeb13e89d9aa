"""Personal data crypto and key handling."""

from __future__ import annotations

import io
import logging
import secrets

import orjson
import pytest
from cryptography.exceptions import InvalidTag

from services.access.keys import load_keys
from services.access.pii import PiiCipher, mask_phone, normalise_phone
from services.platform import logs
from services.platform.config import Settings
from services.platform.errors import DomainError
from services.platform.logs import JsonFormatter


def test_phone_round_trips_encrypted_with_a_fresh_nonce_and_a_stable_index():
    cipher = PiiCipher(secrets.token_bytes(32))
    a, b = cipher.encrypt("13800138000"), cipher.encrypt("13800138000")
    assert a != b and cipher.decrypt(a) == "13800138000"
    assert cipher.index("13800138000") == cipher.index("13800138000") != cipher.index("13800138001")
    with pytest.raises(InvalidTag):
        PiiCipher(secrets.token_bytes(32)).decrypt(a)
    tampered = a[:-1] + bytes([a[-1] ^ 1])
    with pytest.raises(InvalidTag):
        cipher.decrypt(tampered)


def test_phones_are_normalised_and_masked():
    assert normalise_phone("+86 138-0013-8000") == "13800138000"
    with pytest.raises(DomainError):
        normalise_phone("12345")
    assert mask_phone("13812345678") == "138****5678"


def test_development_keys_are_made_once_and_kept(tmp_path):
    settings = Settings(env="development", data_dir=tmp_path)
    first, second = load_keys(settings), load_keys(settings)
    assert first.pii_key == second.pii_key
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_keys(tmp_path):
    with pytest.raises(RuntimeError):
        load_keys(Settings(env="production", data_dir=tmp_path))


def test_json_log_lines_leave_out_the_personal_values_of_their_own_request_only():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.pii")
    logger.addHandler(handler)
    try:
        token = logs.request_id_var.set("req-with-delivery")
        logs.hide(["李雷", "13912345678", "x"])  # one character is too short to hide
        try:
            raise RuntimeError("cannot deliver to 李雷 at 13912345678")
        except RuntimeError:
            logger.exception("delivery for %s failed", "李雷")
        logs.request_id_var.reset(token)
        token = logs.request_id_var.set("another-request")
        logger.warning("李雷 is only hidden where the request gave it")
        logs.request_id_var.reset(token)
    finally:
        logger.removeHandler(handler)
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "delivery for [REDACTED] failed"
    assert "RuntimeError: cannot deliver to [REDACTED] at [REDACTED]" in first["exception"]
    assert "李雷" not in str(first) and "13912345678" not in str(first)
    assert second["message"].startswith("李雷")

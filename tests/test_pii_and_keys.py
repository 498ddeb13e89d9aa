"""Personal data crypto and key handling."""

from __future__ import annotations

import secrets

import pytest
from cryptography.exceptions import InvalidTag

from services.config import Settings
from services.errors import DomainError
from services.keys import load_keys
from services.pii import PiiCipher, mask_phone, normalise_phone


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

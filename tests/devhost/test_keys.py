"""The keys file and the auth-level rules."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from devhost.keys import HostKeys, load_or_create_keys, presented_key


def test_first_use_creates_an_owner_only_file_with_random_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "keys.json"
    keys = load_or_create_keys(path)
    document = json.loads(path.read_text())
    assert document == {"masterKey": keys.master_key, "functionKeys": {"default": keys.default_function_key}}
    assert len(keys.master_key) >= 40 and keys.master_key != keys.default_function_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_keys(path) == keys
    assert load_or_create_keys(tmp_path / "other.json").master_key != keys.master_key


@pytest.mark.parametrize(
    "content", ["not json", "{}", '{"masterKey": "m"}', '{"masterKey": "", "functionKeys": {"d": "k"}}']
)
def test_malformed_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ValueError):
        load_or_create_keys(path)


KEYS = HostKeys("master", {"default": "host-key"}, {"send": {"default": "send-key"}})


@pytest.mark.parametrize(
    ("level", "function", "key", "allowed"),
    [
        ("anonymous", "send", None, True),
        ("ANONYMOUS", "send", "anything", True),
        ("function", "send", None, False),
        ("function", "send", "", False),
        ("function", "send", "wrong", False),
        ("function", "send", "host-key", True),
        ("function", "send", "send-key", True),
        ("function", "other", "send-key", False),
        ("function", "send", "master", True),
        ("admin", "send", "host-key", False),
        ("admin", "send", "send-key", False),
        ("admin", "send", "master", True),
        ("system", "send", "master", False),
    ],
)
def test_auth_levels(level: str, function: str, key: str | None, allowed: bool) -> None:
    assert KEYS.is_authorized(level, function, key) is allowed


def test_header_wins_over_query() -> None:
    assert presented_key({"x-functions-key": "h"}, {"code": "q"}) == "h"
    assert presented_key({}, {"code": "q"}) == "q"
    assert presented_key({}, {}) is None

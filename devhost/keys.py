"""Function keys for the local host: a JSON file, created with random keys on first use.

File shape: `{"masterKey": "...", "functionKeys": {"default": "..."}}`, plus optionally
`"functions": {"<function name>": {"<key name>": "..."}}` for keys valid for one function only.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEY_HEADER = "x-functions-key"
KEY_QUERY_PARAMETER = "code"


@dataclass(frozen=True)
class HostKeys:
    """The master key, host-level function keys and per-function keys."""

    master_key: str
    function_keys: Mapping[str, str]
    per_function_keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def default_function_key(self) -> str:
        return self.function_keys.get("default") or next(iter(self.function_keys.values()))

    def is_authorized(self, auth_level: str, function_name: str, presented: str | None) -> bool:
        """Whether `presented` satisfies `auth_level` (anonymous, function or admin) for the function."""
        level = auth_level.lower()
        if level == "anonymous":
            return True
        if not presented:
            return False
        if level == "admin":
            return _matches_any(presented, [self.master_key])
        if level == "function":
            candidates = [
                self.master_key,
                *self.function_keys.values(),
                *self.per_function_keys.get(function_name, {}).values(),
            ]
            return _matches_any(presented, candidates)
        return False


def _matches_any(presented: str, candidates: Iterable[str]) -> bool:
    # Compare against every candidate so the time taken does not reveal which one matched.
    results = [hmac.compare_digest(presented.encode(), c.encode()) for c in candidates]
    return any(results)


def new_key() -> str:
    return secrets.token_urlsafe(40)


def load_or_create_keys(path: Path) -> HostKeys:
    """Read the keys file, or create it (owner-only) with a random master key and default key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"masterKey": new_key(), "functionKeys": {"default": new_key()}}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        master = document["masterKey"]
        function_keys = dict(document["functionKeys"])
        per_function = {name: dict(keys) for name, keys in document.get("functions", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path} is not a keys file: expected "
            '{"masterKey": "...", "functionKeys": {"default": "..."}} '
            f"({type(error).__name__}: {error})"
        ) from None
    if not isinstance(master, str) or not master or not function_keys:
        raise ValueError(f"{path}: masterKey and at least one functionKeys entry are required")
    return HostKeys(master, function_keys, per_function)


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a request carries: the `x-functions-key` header first, else the `code` query parameter."""
    return headers.get(KEY_HEADER) or query.get(KEY_QUERY_PARAMETER) or None

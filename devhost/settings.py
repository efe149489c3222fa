"""App settings as `func start` handles them: local.settings.json `Values` become environment
variables, and `%NAME%` in binding properties resolves against them."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

_EXPRESSION = re.compile(r"%([^%]+)%")


class UnresolvedSettingError(ValueError):
    """A `%NAME%` expression names a setting that is not defined."""


def resolve_expressions(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every `%NAME%` in `text` with the setting's value, as the host's name resolver does."""
    source = os.environ if environ is None else environ

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        value = source.get(name)
        if value is None:
            raise UnresolvedSettingError(f"'%{name}%' does not resolve to a value.")
        return value

    return _EXPRESSION.sub(lookup, text)


def load_local_settings(path: Path) -> dict[str, Any]:
    """Read a local.settings.json file (`{"IsEncrypted": false, "Values": {...}, "Host": {...}}`)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if document.get("IsEncrypted"):
        raise ValueError(f"{path} is encrypted; only plain-text values are supported")
    return document


def settings_values(document: Mapping[str, Any]) -> dict[str, str]:
    """The `Values` section as environment strings (JSON true/false become "true"/"false")."""
    values: dict[str, str] = {}
    for name, value in (document.get("Values") or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        else:
            values[name] = str(value)
    return values


class EnvironmentOverlay:
    """Apply settings to an environment, remembering what they replaced so `restore()` undoes it.

    Like `func start`, a variable already set in the environment wins over the settings file,
    unless `override` is true.
    """

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._previous: dict[str, str | None] = {}

    def apply(self, values: Mapping[str, str], *, override: bool = False) -> list[str]:
        """Set the values; returns the names skipped because the environment already set them."""
        skipped: list[str] = []
        for name, value in values.items():
            current = self._environ.get(name)
            if current is not None and not override and name not in self._previous:
                if current != value:
                    skipped.append(name)
                continue
            self._previous.setdefault(name, current)
            self._environ[name] = value
        return skipped

    def restore(self) -> None:
        for name, value in self._previous.items():
            if value is None:
                self._environ.pop(name, None)
            else:
                self._environ[name] = value
        self._previous.clear()

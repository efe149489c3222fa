"""Injected WNS failures: one-shot rules per channel and a seeded random mix for all channels."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any

WNS_STATUSES = ("received", "dropped", "channelthrottled")
DEVICE_STATUSES = ("connected", "disconnected", "tempdisconnected", "tempconnected")
# Throttling and unavailability answers that carry Retry-After in the global mix.
RETRY_AFTER_STATUSES = (406, 429, 503)
_RULE_KEYS = {
    "status",
    "retryAfter",
    "errorDescription",
    "wnsStatus",
    "deviceStatus",
    "delaySeconds",
    "drop",
    "count",
}


class FaultError(ValueError):
    """A fault specification the sandbox cannot apply."""


@dataclass(frozen=True, slots=True)
class FaultRule:
    """What to do with one send that passed validation.

    `status=None` means "answer normally" (used for delay-only rules); `drop` closes the connection
    without an answer after `delay_seconds`.
    """

    status: int | None = None
    retry_after: int | None = None
    error_description: str | None = None
    wns_status: str | None = None
    device_status: str | None = None
    delay_seconds: float = 0.0
    drop: bool = False

    @property
    def delivers(self) -> bool:
        """True if the send still counts as received (so it reaches the inbox)."""
        if self.drop:
            return False
        return self.status is None or (self.status == 200 and self.wns_status in (None, "received"))


def parse_rule(spec: Any) -> tuple[FaultRule, int]:
    if not isinstance(spec, dict):
        raise FaultError("each fault rule must be a JSON object")
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise FaultError(f"unknown fault rule keys: {sorted(unknown)}")
    status = _optional_int(spec, "status", 200, 599)
    wns_status = spec.get("wnsStatus")
    if wns_status is not None:
        if wns_status not in WNS_STATUSES:
            raise FaultError(f"wnsStatus must be one of {WNS_STATUSES}")
        if status not in (None, 200):
            raise FaultError("wnsStatus applies to status 200 only")
        status = 200
    device_status = spec.get("deviceStatus")
    if device_status is not None and device_status not in DEVICE_STATUSES:
        raise FaultError(f"deviceStatus must be one of {DEVICE_STATUSES}")
    description = spec.get("errorDescription")
    if description is not None and (not isinstance(description, str) or not description.isprintable()):
        raise FaultError("errorDescription must be a printable string")
    delay = spec.get("delaySeconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 600:
        raise FaultError("delaySeconds must be a number from 0 to 600")
    drop = spec.get("drop", False)
    if not isinstance(drop, bool):
        raise FaultError("drop must be true or false")
    count = _optional_int(spec, "count", 1, 1_000_000) or 1
    rule = FaultRule(
        status=status,
        retry_after=_optional_int(spec, "retryAfter", 0, 86400),
        error_description=description,
        wns_status=wns_status,
        device_status=device_status,
        delay_seconds=float(delay),
        drop=drop,
    )
    return rule, count


def _optional_int(spec: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(f"{key} must be an integer from {low} to {high}")
    return value


class RuleQueue:
    """A channel's pending one-shot rules, consumed in order by the next valid sends."""

    def __init__(self) -> None:
        self._rules: deque[list[Any]] = deque()

    def extend(self, specs: Any) -> int:
        if not isinstance(specs, list):
            raise FaultError("faults must be a JSON list of rules")
        parsed = [parse_rule(spec) for spec in specs]
        self._rules.extend([rule, count] for rule, count in parsed)
        return len(self._rules)

    def take(self) -> FaultRule | None:
        if not self._rules:
            return None
        entry = self._rules[0]
        entry[1] -= 1
        if entry[1] <= 0:
            self._rules.popleft()
        return entry[0]

    def clear(self) -> None:
        self._rules.clear()

    def pending(self) -> list[dict[str, Any]]:
        return [{"rule": _describe(rule), "remaining": count} for rule, count in self._rules]

    def __len__(self) -> int:
        return len(self._rules)


class FaultMix:
    """A seeded random choice of outcome for every valid send on every channel."""

    def __init__(self, spec: dict[str, Any]) -> None:
        unknown = set(spec) - {"seed", "mix", "retryAfter", "timeoutSeconds"}
        if unknown:
            raise FaultError(f"unknown fault mix keys: {sorted(unknown)}")
        mix = spec.get("mix", {})
        if not isinstance(mix, dict):
            raise FaultError("mix must be an object of outcome -> probability")
        retry_after = _optional_int(spec, "retryAfter", 0, 86400)
        timeout = spec.get("timeoutSeconds", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout <= 600:
            raise FaultError("timeoutSeconds must be a number from 0 to 600")
        seed = spec.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | str)):
            raise FaultError("seed must be an integer or a string")
        self.spec = spec
        self._random = random.Random(seed)
        self._table: list[tuple[float, FaultRule]] = []
        total = 0.0
        for outcome, probability in mix.items():
            if isinstance(probability, bool) or not isinstance(probability, int | float) or probability < 0:
                raise FaultError(f"probability of {outcome!r} must be a non-negative number")
            total += probability
            self._table.append((total, _mix_rule(outcome, retry_after, float(timeout))))
        if total > 1.0 + 1e-9:
            raise FaultError("mix probabilities add up to more than 1")

    def draw(self) -> FaultRule | None:
        if not self._table:
            return None
        point = self._random.random()
        for bound, rule in self._table:
            if point < bound:
                return rule
        return None


def _mix_rule(outcome: str, retry_after: int | None, timeout: float) -> FaultRule:
    if outcome == "timeout":
        return FaultRule(delay_seconds=timeout, drop=True)
    if outcome == "drop":
        return FaultRule(drop=True)
    if outcome in ("dropped", "channelthrottled"):
        return FaultRule(status=200, wns_status=outcome)
    if outcome.isdigit() and 200 <= int(outcome) <= 599:
        status = int(outcome)
        return FaultRule(status=status, retry_after=retry_after if status in RETRY_AFTER_STATUSES else None)
    raise FaultError(
        f"unknown mix outcome {outcome!r}: use an HTTP status, 'timeout', 'drop', 'dropped' or 'channelthrottled'"
    )


def _describe(rule: FaultRule) -> dict[str, Any]:
    fields = {
        "status": rule.status,
        "retryAfter": rule.retry_after,
        "errorDescription": rule.error_description,
        "wnsStatus": rule.wns_status,
        "deviceStatus": rule.device_status,
        "delaySeconds": rule.delay_seconds or None,
        "drop": rule.drop or None,
    }
    return {k: v for k, v in fields.items() if v is not None}

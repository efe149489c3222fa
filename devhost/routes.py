"""ASP.NET Core route templates, the subset HTTP triggers use.

`{name}`, optional `{name?}`, defaults `{name=value}`, constraints `{id:int}` (chained with `:`),
catch-all `{*rest}` / `{**rest}`, literal `{{` `}}`, and several parameters in one segment
(`{name}.{ext}`). Literals match case-insensitively. Matching works on percent-decoded segments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_GUID_FORMATS = (
    re.compile(r"[0-9a-f]{32}", re.I),
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I),
    re.compile(r"\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}", re.I),
    re.compile(r"\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)", re.I),
)
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")

Constraint = Callable[[str], bool]


def _integer_in(bounds: tuple[int, int]) -> Constraint:
    return lambda v: bool(_INTEGER.fullmatch(v)) and bounds[0] <= int(v) <= bounds[1]


def _is_number(value: str) -> bool:
    return bool(_NUMBER.fullmatch(value))


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    return any(p.fullmatch(value) for p in _GUID_FORMATS)


_SIMPLE_CONSTRAINTS: dict[str, Constraint] = {
    "int": _integer_in(INT32),
    "long": _integer_in(INT64),
    "bool": lambda v: v.strip().lower() in ("true", "false"),
    "guid": _is_guid,
    "alpha": lambda v: bool(re.fullmatch(r"[A-Za-z]+", v)),
    "double": _is_number,
    "float": _is_number,
    "decimal": _is_number,
    "datetime": _is_datetime,
    "required": lambda v: v != "",
}


def _integers(arguments: str, count: int, constraint: str) -> list[int]:
    parts = [p.strip() for p in arguments.split(",")]
    if len(parts) != count or not all(_INTEGER.fullmatch(p) for p in parts):
        raise ValueError(f"route constraint {constraint}({arguments}) needs {count} integer(s)")
    return [int(p) for p in parts]


def parse_constraint(text: str) -> Constraint:
    """One constraint (`int`, `min(1)`, `regex(^a+$)`, ...) as a predicate on the raw value."""
    name, _, arguments = text.partition("(")
    name = name.strip().lower()
    if not arguments:
        if name in _SIMPLE_CONSTRAINTS:
            return _SIMPLE_CONSTRAINTS[name]
        raise ValueError(f"unknown route constraint {text!r}")
    if not arguments.endswith(")"):
        raise ValueError(f"route constraint {text!r} lacks a closing parenthesis")
    arguments = arguments[:-1]
    if name == "regex":
        pattern = re.compile(arguments, re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    if name in ("minlength", "maxlength"):
        (bound,) = _integers(arguments, 1, name)
        return (lambda v: len(v) >= bound) if name == "minlength" else (lambda v: len(v) <= bound)
    if name == "length":
        bounds = _integers(arguments, arguments.count(",") + 1, name)
        low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return lambda v: low <= len(v) <= high
    if name in ("min", "max"):
        (bound,) = _integers(arguments, 1, name)
        is_long = _integer_in(INT64)
        if name == "min":
            return lambda v: is_long(v) and int(v) >= bound
        return lambda v: is_long(v) and int(v) <= bound
    if name == "range":
        low, high = _integers(arguments, 2, name)
        is_long = _integer_in(INT64)
        return lambda v: is_long(v) and low <= int(v) <= high
    raise ValueError(f"unknown route constraint {text!r}")


def _split_outside_parentheses(text: str, separator: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


@dataclass(frozen=True)
class RouteParameter:
    name: str
    optional: bool = False
    catch_all: bool = False
    default: str | None = None
    constraints: tuple[Constraint, ...] = ()

    @classmethod
    def parse(cls, text: str) -> RouteParameter:
        catch_all = text.startswith("*")
        body = text.lstrip("*")
        optional = body.endswith("?")
        body = body.removesuffix("?")
        default: str | None = None
        head, *rest = _split_outside_parentheses(body, "=")
        if rest:
            default = "=".join(rest)
        name, *constraints = _split_outside_parentheses(head, ":")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"invalid route parameter name {name!r}")
        return cls(name, optional, catch_all, default, tuple(parse_constraint(c) for c in constraints))

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.constraints)


@dataclass(frozen=True)
class RouteSegment:
    parts: tuple[str | RouteParameter, ...]
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> RouteSegment:
        parts: list[str | RouteParameter] = []
        literal, i = "", 0
        while i < len(text):
            if text.startswith("{{", i) or text.startswith("}}", i):
                literal += text[i]
                i += 2
            elif text[i] == "{":
                end = text.find("}", i)
                if end < 0:
                    raise ValueError(f"unclosed '{{' in route segment {text!r}")
                if literal:
                    parts.append(literal)
                    literal = ""
                parts.append(RouteParameter.parse(text[i + 1 : end]))
                i = end + 1
            elif text[i] == "}":
                raise ValueError(f"unmatched '}}' in route segment {text!r}")
            else:
                literal += text[i]
                i += 1
        if literal:
            parts.append(literal)
        params = [p for p in parts if isinstance(p, RouteParameter)]
        if len(parts) > 1 and any(p.catch_all or p.optional for p in params):
            raise ValueError(f"route segment {text!r}: catch-all and optional parameters must stand alone")
        regex = ""
        for index, part in enumerate(parts):
            if isinstance(part, str):
                regex += re.escape(part)
            else:
                # Greedy parameters give ASP.NET's right-to-left literal matching: {a}.{b} on x.y.z is x.y / z.
                regex += f"(?P<p{index}>.+)"
        return cls(tuple(parts), re.compile(regex, re.IGNORECASE | re.DOTALL))

    @property
    def parameter(self) -> RouteParameter | None:
        """The parameter when it is the whole segment."""
        only = self.parts[0] if len(self.parts) == 1 else None
        return only if isinstance(only, RouteParameter) else None

    def match(self, value: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(value)
        if not found:
            return None
        values: dict[str, str] = {}
        for index, part in enumerate(self.parts):
            if isinstance(part, RouteParameter):
                captured = found.group(f"p{index}")
                if not part.accepts(captured):
                    return None
                values[part.name] = captured
        return values

    @property
    def precedence(self) -> int:
        """ASP.NET inbound precedence digit: literal 1, complex 2, constrained 3, plain 4, catch-all 5."""
        param = self.parameter
        if param is None:
            return 2 if any(isinstance(p, RouteParameter) for p in self.parts) else 1
        if param.catch_all:
            return 5
        return 3 if param.constraints else 4


@dataclass(frozen=True)
class RouteTemplate:
    template: str
    segments: tuple[RouteSegment, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        text = template.removeprefix("~").strip("/")
        segments = tuple(RouteSegment.parse(s) for s in text.split("/")) if text else ()
        for index, segment in enumerate(segments):
            param = segment.parameter
            if param and param.catch_all and index != len(segments) - 1:
                raise ValueError(f"route {template!r}: a catch-all parameter must be last")
            if not segment.parts:
                raise ValueError(f"route {template!r} has an empty segment")
        names = [p.name.lower() for s in segments for p in s.parts if isinstance(p, RouteParameter)]
        if len(names) != len(set(names)):
            raise ValueError(f"route {template!r} repeats a parameter name")
        return cls(template, segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(s.precedence for s in self.segments)

    def match(self, path_segments: Sequence[str]) -> dict[str, str] | None:
        """Route values when the decoded path segments match, else None."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            param = segment.parameter
            if param and param.catch_all:
                rest = "/".join(path_segments[index:])
                if rest or param.default is not None:
                    value = rest or str(param.default)
                    if not param.accepts(value):
                        return None
                    values[param.name] = value
                return values
            if index >= len(path_segments):
                if param is None or not (param.optional or param.default is not None):
                    return None
                if param.default is not None:
                    values[param.name] = param.default
                continue
            found = segment.match(path_segments[index])
            if found is None:
                return None
            values.update(found)
        return values if len(path_segments) <= len(self.segments) else None


def split_path(raw_path: str) -> list[str] | None:
    """Percent-decoded segments of a request path (outer slashes ignored); None if malformed."""
    trimmed = raw_path.strip("/")
    if not trimmed:
        return []
    segments = trimmed.split("/")
    if any(s == "" for s in segments):
        return None
    return [unquote(s) for s in segments]

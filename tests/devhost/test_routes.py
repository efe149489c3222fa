"""Route templates: parsing, matching, constraints and precedence."""

from __future__ import annotations

import pytest

from devhost.routes import RouteTemplate, parse_constraint, split_path


def match(template: str, path: str) -> dict[str, str] | None:
    segments = split_path(path)
    assert segments is not None
    return RouteTemplate.parse(template).match(segments)


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("api/health", "/api/health", {}),
        ("api/health", "/API/Health/", {}),
        ("api/users/{id}", "/api/users/u1", {"id": "u1"}),
        ("api/users/{id}/tags/{tag}", "/api/users/u1/tags/red", {"id": "u1", "tag": "red"}),
        ("api/hello/{name?}", "/api/hello", {}),
        ("api/hello/{name?}", "/api/hello/x", {"name": "x"}),
        ("api/page/{n:int=1}", "/api/page", {"n": "1"}),
        ("api/page/{n:int=1}", "/api/page/7", {"n": "7"}),
        ("api/files/{*rest}", "/api/files", {}),
        ("api/files/{*rest}", "/api/files/a/b", {"rest": "a/b"}),
        ("api/files/{**rest}", "/api/files/a%2Fb/c", {"rest": "a/b/c"}),
        ("api/{name}.{ext}", "/api/report.tar.gz", {"name": "report.tar", "ext": "gz"}),
        ("api/v{version:int}/items", "/api/v2/items", {"version": "2"}),
        ("api/{{literal}}", "/api/{literal}", {}),
        ("", "/", {}),
    ],
)
def test_matches(template: str, path: str, expected: dict[str, str]) -> None:
    assert match(template, path) == expected


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("api/health", "/api/healthz"),
        ("api/users/{id}", "/api/users"),
        ("api/users/{id}", "/api/users/u1/extra"),
        ("api/hello/{name?}", "/api/hello/a/b"),
        ("api/v{version:int}/items", "/api/vX/items"),
        ("api/{name}.{ext}", "/api/noextension"),
    ],
)
def test_does_not_match(template: str, path: str) -> None:
    assert match(template, path) is None


@pytest.mark.parametrize(
    ("constraint", "accepted", "refused"),
    [
        ("int", ["0", "-5", "2147483647"], ["2147483648", "1.5", "x", ""]),
        ("long", ["9223372036854775807"], ["9223372036854775808", "x"]),
        ("bool", ["true", "False"], ["yes", "1"]),
        ("guid", ["0f8fad5bd19d4deaa1b50d3e3b1f0c5a", "(0f8fad5b-d19d-4dea-a1b5-0d3e3b1f0c5a)"], ["0f8fad5b", "zz"]),
        ("alpha", ["abcXYZ"], ["abc1", ""]),
        ("double", ["1.5", "-2", "1e3", ".5"], ["1.5.5", "x"]),
        ("datetime", ["2026-11-23", "2026-11-23T10:00:00"], ["tomorrow"]),
        ("minlength(3)", ["abc"], ["ab"]),
        ("maxlength(3)", ["abc"], ["abcd"]),
        ("length(2)", ["ab"], ["a", "abc"]),
        ("length(1,3)", ["a", "abc"], ["abcd"]),
        ("min(10)", ["10", "11"], ["9", "x"]),
        ("max(10)", ["10", "-1"], ["11"]),
        ("range(1,3)", ["1", "3"], ["0", "4"]),
        ("regex(^[a-z]{{2}}$)".replace("{{", "{").replace("}}", "}"), ["ab", "AB"], ["abc"]),
    ],
)
def test_constraints(constraint: str, accepted: list[str], refused: list[str]) -> None:
    check = parse_constraint(constraint)
    assert all(check(v) for v in accepted)
    assert not any(check(v) for v in refused)


def test_chained_constraints() -> None:
    template = RouteTemplate.parse("api/items/{id:int:min(1)}")
    assert template.match(["api", "items", "5"]) == {"id": "5"}
    assert template.match(["api", "items", "0"]) is None


def test_regex_constraint_may_contain_colons_and_equals() -> None:
    template = RouteTemplate.parse(r"api/at/{time:regex(^\d\d:\d\d$)}")
    assert template.match(["api", "at", "10:30"]) == {"time": "10:30"}
    assert template.match(["api", "at", "1030"]) is None


@pytest.mark.parametrize(
    "template",
    [
        "api/{*rest}/more",
        "api/{id:unknown}",
        "api/{id}/{ID}",
        "api/{id",
        "api/id}",
        "api//x",
        "api/{9lives}",
        "api/x{name?}",
        "api/{id:min(x)}",
    ],
)
def test_invalid_templates(template: str) -> None:
    with pytest.raises(ValueError):
        RouteTemplate.parse(template)


def test_precedence_literal_before_constrained_before_plain_before_catch_all() -> None:
    templates = ["api/{*rest}", "api/{name}", "api/{id:int}", "api/health", "api/{a}.{b}"]
    ordered = sorted(templates, key=lambda t: RouteTemplate.parse(t).precedence)
    assert ordered == ["api/health", "api/{a}.{b}", "api/{id:int}", "api/{name}", "api/{*rest}"]


def test_split_path() -> None:
    assert split_path("/api/a%20b/") == ["api", "a b"]
    assert split_path("/") == []
    assert split_path("/api//x") is None

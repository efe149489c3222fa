"""Tag expressions: parsing, limits, and evaluation checked against brute force."""

import itertools

import pytest

from pushfuncs.tag_expression import InvalidTagExpression, evaluate, mentioned_tags, parse_tag_expression

TAGS = ["a", "b", "c", "d"]


def reference(expression: str, tags: frozenset[str]) -> bool:
    python = expression.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    return bool(eval(python, {}, {t: t in tags for t in TAGS}))  # trusted test input only


@pytest.mark.parametrize(
    "expression",
    ["a", "a || b", "a && b", "a && !b", "(a || b) && !c", "!(a && b) && (c || d)", "a && !(b || !c)", "a||b&&c"],
)
def test_evaluation_matches_brute_force(expression: str) -> None:
    node = parse_tag_expression(expression)
    for size in range(len(TAGS) + 1):
        for combo in itertools.combinations(TAGS, size):
            tags = frozenset(combo)
            assert evaluate(node, tags) == reference(expression, tags), (expression, tags)


@pytest.mark.parametrize(
    "expression",
    ["", "   ", "a &&", "&& a", "(a || b", "a || b)", "a b", "a & b", "a | b", "!", "()", "!a", "!(a && b)", "a/b"],
)
def test_malformed_or_unbounded_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidTagExpression):
        parse_tag_expression(expression)


def test_tag_limits_follow_notification_hubs() -> None:
    parse_tag_expression(" || ".join(f"t{i}" for i in range(20)))
    with pytest.raises(InvalidTagExpression, match="at most 20"):
        parse_tag_expression(" || ".join(f"t{i}" for i in range(21)))
    parse_tag_expression(" && ".join(f"t{i}" for i in range(6)))
    with pytest.raises(InvalidTagExpression, match="at most 6"):
        parse_tag_expression(" && ".join(f"t{i}" for i in range(7)))


def test_mentioned_tags() -> None:
    assert mentioned_tags(parse_tag_expression("(b || a) && !c")) == ["a", "b", "c"]

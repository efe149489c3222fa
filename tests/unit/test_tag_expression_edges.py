"""Tag expressions at their edges: 1,000 characters, 120-character tags, 32 levels, 20 and 6 tags
exactly, each parse error with its reason, precedence and associativity of the tree."""

import pytest

from pushfuncs.tag_expression import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_TAGS,
    MAX_TAGS_OR_ONLY,
    And,
    InvalidTagExpression,
    Not,
    Or,
    Tag,
    evaluate,
    mentioned_tags,
    parse_tag_expression,
)


def refused(expression: object) -> str:
    with pytest.raises(InvalidTagExpression) as caught:
        parse_tag_expression(expression)  # type: ignore[arg-type]
    return str(caught.value)


def test_the_length_limit_is_exact() -> None:
    assert MAX_LENGTH == 1000
    longest = " " * (MAX_LENGTH - 120) + "t" * 120
    assert parse_tag_expression(longest) == Tag("t" * 120)
    assert refused(" " + longest) == "is longer than 1000 characters"


def test_a_tag_of_120_characters_is_one_tag_and_121_is_refused() -> None:
    assert parse_tag_expression("a" * 120) == Tag("a" * 120)
    assert refused("a" * 121) == "unexpected 'a' after a complete expression"


@pytest.mark.parametrize("expression", [None, 5, "", "   ", "\t\n", ["a"]])
def test_anything_but_a_non_blank_string_is_refused(expression: object) -> None:
    assert refused(expression) == "must be a non-empty string"


def test_nesting_is_limited_to_32_levels_exactly() -> None:
    assert MAX_DEPTH == 32
    deepest = "(" * 32 + "a" + ")" * 32
    assert parse_tag_expression(deepest) == Tag("a")
    assert refused("(" * 33 + "a" + ")" * 33) == "nests '!' and parentheses deeper than 32 levels"
    thirty_two_nots = parse_tag_expression("!" * 32 + "a")
    assert evaluate(thirty_two_nots, frozenset({"a"}))
    assert not evaluate(thirty_two_nots, frozenset())
    assert refused("!" * 33 + "a") == "nests '!' and parentheses deeper than 32 levels"


def test_depth_counts_nesting_not_siblings() -> None:
    # 20 groups side by side, each one level deep: depth is restored after each group.
    expression = " || ".join(f"(t{i})" for i in range(MAX_TAGS_OR_ONLY))
    parse_tag_expression(expression)
    many_nots = " && ".join(["a"] + ["!" * 30 + "!b"] * 5)  # 31 levels each, side by side
    assert parse_tag_expression(many_nots)


def test_or_only_expressions_take_20_tags_exactly() -> None:
    tags = [f"t{i}" for i in range(MAX_TAGS_OR_ONLY + 1)]
    parse_tag_expression(" || ".join(tags[:20]))
    assert refused(" || ".join(tags)) == "an expression of only || may use at most 20 tags, this one uses 21"
    parse_tag_expression("(" + " || ".join(tags[:20]) + ")")


def test_expressions_with_and_take_6_tags_exactly() -> None:
    tags = [f"t{i}" for i in range(MAX_TAGS + 1)]
    parse_tag_expression(" && ".join(tags[:6]))
    assert refused(" && ".join(tags)) == "an expression with && or ! may use at most 6 tags, this one uses 7"
    assert refused("a && " + " || ".join(tags[:6])) == (
        "an expression with && or ! may use at most 6 tags, this one uses 7"
    )


def test_a_not_makes_the_six_tag_limit_apply() -> None:
    assert parse_tag_expression("(a || b || c || d || e) && !f")
    assert refused("a || b || c || d || e || f && !g") == (
        "an expression with && or ! may use at most 6 tags, this one uses 7"
    )
    assert refused("a || b || c || d || e || f || !g").startswith("an expression with && or !")


def test_repeated_tags_count_each_time() -> None:
    assert refused(" || ".join(["a"] * 21)).endswith("this one uses 21")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("a $ b", "unexpected character at position 1: ' $ b'"),
        ("a$", "unexpected character at position 1: '$'"),
        ("a #b", "unexpected character at position 1: ' #b'"),
        ("a ||", "expression ends too early"),
        ("!", "expression ends too early"),
        ("(a", "expression ends too early"),
        ("a || &&", "expected a tag, '!' or '(' but found '&&'"),
        ("|| a", "expected a tag, '!' or '(' but found '||'"),
        ("()", "expected a tag, '!' or '(' but found ')'"),
        ("(a b", "missing closing parenthesis"),
        ("(a || b c)", "missing closing parenthesis"),
        ("a)", "unexpected ')' after a complete expression"),
        ("a b", "unexpected 'b' after a complete expression"),
        ("a & b", "unexpected character at position 1: ' & b'"),
        ("a | b", "unexpected character at position 1: ' | b'"),
        ("a|" + "b" * 20, "unexpected character at position 1: '|bbbbbbbbb'"),
    ],
)
def test_each_parse_error_says_where(expression: str, reason: str) -> None:
    assert refused(expression) == reason


@pytest.mark.parametrize("expression", ["!a", "a || !b", "!(a && b)", "!a || a", "!!!a"])
def test_an_expression_true_without_tags_is_refused(expression: str) -> None:
    assert refused(expression) == "must require at least one tag (it matches installations with no tags at all)"


def test_surrounding_whitespace_and_none_between_tokens_are_fine() -> None:
    assert parse_tag_expression("  a&&!b||c  \t") == Or(And(Tag("a"), Not(Tag("b"))), Tag("c"))
    assert parse_tag_expression("!!a") == Not(Not(Tag("a")))


def test_and_binds_tighter_than_or_and_both_associate_left() -> None:
    a, b, c = Tag("a"), Tag("b"), Tag("c")
    assert parse_tag_expression("a || b && c") == Or(a, And(b, c))
    assert parse_tag_expression("a && b || c") == Or(And(a, b), c)
    assert parse_tag_expression("a || b || c") == Or(Or(a, b), c)
    assert parse_tag_expression("a && b && c") == And(And(a, b), c)
    assert parse_tag_expression("(a || b) && c") == And(Or(a, b), c)
    assert parse_tag_expression("!a && b") == And(Not(a), b)
    assert parse_tag_expression("!(a || b) && c") == And(Not(Or(a, b)), c)


def test_tags_take_the_whole_alphabet() -> None:
    assert parse_tag_expression("A-z_0@x.y:z") == Tag("A-z_0@x.y:z")


def test_evaluation_of_each_node() -> None:
    node = parse_tag_expression("a && !b || c")
    assert evaluate(node, frozenset({"a"}))
    assert not evaluate(node, frozenset({"a", "b"}))
    assert evaluate(node, frozenset({"a", "b", "c"}))
    assert evaluate(node, frozenset({"c"}))
    assert not evaluate(node, frozenset({"b"}))
    assert not evaluate(And(Tag("a"), Tag("b")), frozenset({"b"}))
    assert evaluate(Or(Tag("a"), Tag("b")), frozenset({"b"}))


def test_mentioned_tags_are_each_named_once_and_sorted() -> None:
    assert mentioned_tags(parse_tag_expression("c || b && !a || (b && d)")) == ["a", "b", "c", "d"]
    assert mentioned_tags(Tag("x")) == ["x"]


def test_leaving_a_group_restores_the_depth_of_its_parent() -> None:
    # 16 levels, a group that opens and closes a 17th, then 17 more: 33 levels at the deepest.
    expression = "(" * 16 + "(a) && " + "(" * 17 + "b" + ")" * 17 + ")" * 16
    assert refused(expression) == "nests '!' and parentheses deeper than 32 levels"
    assert parse_tag_expression("(" * 16 + "(a) && " + "(" * 16 + "b" + ")" * 16 + ")" * 16) == And(Tag("a"), Tag("b"))

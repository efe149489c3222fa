"""Tag expressions as Notification Hubs allows them: tags joined by `&&`, `||`, `!` and
parentheses; at most 20 tags when only `||` is used, otherwise at most 6."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TAGS_OR_ONLY = 20
MAX_TAGS = 6
MAX_LENGTH = 1000
# Nesting of parentheses and `!`: the parser recurses once per level, so the depth is bounded
# well below Python's recursion limit. No useful expression of 6 tags comes near it.
MAX_DEPTH = 32

_TOKEN = re.compile(r"\s*(?:(\|\|)|(&&)|(!)|(\()|(\))|([A-Za-z0-9_@.:-]{1,120}))")


class InvalidTagExpression(ValueError):
    """The expression cannot be parsed or exceeds the limits; the message says where."""


@dataclass(frozen=True)
class Tag:
    name: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


Node = Tag | Not | And | Or


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise InvalidTagExpression(
                f"unexpected character at position {position}: {text[position : position + 10]!r}"
            )
        tokens.append(next(group for group in match.groups() if group))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise InvalidTagExpression("expression ends too early")
        self.index += 1
        return token

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.peek() == "||":
            self.take()
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.peek() == "&&":
            self.take()
            node = And(node, self.parse_unary())
        return node

    def parse_unary(self) -> Node:
        token = self.take()
        if token in ("!", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise InvalidTagExpression(f"nests '!' and parentheses deeper than {MAX_DEPTH} levels")
            node = Not(self.parse_unary()) if token == "!" else self._parenthesized()
            self.depth -= 1
            return node
        if token in ("||", "&&", ")"):
            raise InvalidTagExpression(f"expected a tag, '!' or '(' but found {token!r}")
        return Tag(token)

    def _parenthesized(self) -> Node:
        node = self.parse_or()
        if self.take() != ")":
            raise InvalidTagExpression("missing closing parenthesis")
        return node


def parse_tag_expression(text: str) -> Node:
    """Parse and check the limits; raises `InvalidTagExpression`."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidTagExpression("must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise InvalidTagExpression(f"is longer than {MAX_LENGTH} characters")
    tokens = _tokenize(text)
    parser = _Parser(tokens)
    node = parser.parse_or()
    if parser.peek() is not None:
        raise InvalidTagExpression(f"unexpected {parser.peek()!r} after a complete expression")
    tags = [t for t in tokens if t not in ("||", "&&", "!", "(", ")")]
    or_only = not any(t in ("&&", "!") for t in tokens)
    limit = MAX_TAGS_OR_ONLY if or_only else MAX_TAGS
    if len(tags) > limit:
        kind = "an expression of only ||" if or_only else "an expression with && or !"
        raise InvalidTagExpression(f"{kind} may use at most {limit} tags, this one uses {len(tags)}")
    if evaluate(node, frozenset()):
        raise InvalidTagExpression("must require at least one tag (it matches installations with no tags at all)")
    return node


def evaluate(node: Node, tags: frozenset[str]) -> bool:
    if isinstance(node, Tag):
        return node.name in tags
    if isinstance(node, Not):
        return not evaluate(node.operand, tags)
    if isinstance(node, And):
        return evaluate(node.left, tags) and evaluate(node.right, tags)
    return evaluate(node.left, tags) or evaluate(node.right, tags)


def mentioned_tags(node: Node) -> list[str]:
    """The tags an expression names, sorted. Every matching installation has at least one:
    the expression depends only on these tags and is false when none is present. So scanning
    these tags' index partitions finds every match.
    """
    names: set[str] = set()

    def walk(n: Node) -> None:
        if isinstance(n, Tag):
            names.add(n.name)
        elif isinstance(n, Not):
            walk(n.operand)
        else:
            walk(n.left)
            walk(n.right)

    walk(node)
    return sorted(names)

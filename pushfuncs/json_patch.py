"""JSON Patch (RFC 6902) over JSON Pointers (RFC 6901): parse a patch document, apply it to a
JSON value. Pure; imports nothing of ours.

Two kinds of failure, because HTTP answers them differently (RFC 5789 section 2.2):
`MalformedPatch`, the document itself is wrong (an unknown `op`, a pointer without its
leading `/`, a missing `value`), and `PatchConflict`, a well-formed operation that the
current value does not allow (`remove` of a missing member, an index past the end, a failed
`test`). Either way nothing is applied: operations run on a copy, in order, all or none.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")
_ESCAPE = re.compile(r"~(?![01])")


class PatchError(Exception):
    """A patch that cannot be applied; `index` is the operation's position, `member` its field."""

    def __init__(self, index: int, member: str, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.member = member
        self.message = message

    @property
    def field(self) -> str:
        return f"[{self.index}].{self.member}" if self.member else f"[{self.index}]"


class MalformedPatch(PatchError):
    """The patch document is not a valid RFC 6902 document."""


class PatchConflict(PatchError):
    """A valid operation that the value it is applied to does not allow."""


@dataclass(frozen=True)
class Operation:
    op: str
    path: tuple[str, ...]
    value: object = None
    source: tuple[str, ...] = ()  # `from` of move and copy
    pointer: str = ""  # the path as given, for messages


def parse_pointer(text: object, index: int, member: str) -> tuple[str, ...]:
    """RFC 6901: "" is the whole value; otherwise "/"-separated tokens with ~1 for / and ~0 for ~."""
    if not isinstance(text, str):
        raise MalformedPatch(index, member, "must be a JSON Pointer string")
    if text == "":
        return ()
    if not text.startswith("/"):
        raise MalformedPatch(index, member, f"{text!r} is not a JSON Pointer: it must start with '/'")
    if _ESCAPE.search(text):
        raise MalformedPatch(index, member, f"{text!r}: '~' must be followed by 0 or 1")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/"))


def parse_patch(document: object) -> list[Operation]:
    """The operations of a JSON Patch document (a JSON array of operation objects)."""
    if not isinstance(document, list):
        raise MalformedPatch(0, "", "a JSON Patch is a JSON array of operations")
    operations = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise MalformedPatch(index, "", "each operation must be an object with op and path")
        op = item.get("op")
        if op not in OPERATIONS:
            raise MalformedPatch(index, "op", f"must be one of {', '.join(OPERATIONS)}")
        if "path" not in item:
            raise MalformedPatch(index, "path", "is required")
        path = parse_pointer(item["path"], index, "path")
        source: tuple[str, ...] = ()
        if op in ("add", "replace", "test") and "value" not in item:
            raise MalformedPatch(index, "value", f"is required by {op}")
        if op in ("move", "copy"):
            if "from" not in item:
                raise MalformedPatch(index, "from", f"is required by {op}")
            source = parse_pointer(item["from"], index, "from")
            if op == "move" and path[: len(source)] == source and path != source:
                raise MalformedPatch(index, "from", "a value cannot be moved into one of its own children")
        operations.append(Operation(str(op), path, item.get("value"), source, str(item["path"])))
    return operations


def apply_patch(value: object, operations: list[Operation]) -> object:
    """`value` with every operation applied in order (a new value; `value` is not changed)."""
    result = copy.deepcopy(value)
    for index, operation in enumerate(operations):
        result = _apply(result, operation, index)
    return result


def json_equal(left: object, right: object) -> bool:
    """RFC 6902 `test` equality: same JSON type and value (1 == 1.0, but true != 1)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and left == right


def _apply(document: object, operation: Operation, index: int) -> object:
    op, path = operation.op, operation.path
    if op == "test":
        if not json_equal(_get(document, path, index, "path"), operation.value):
            raise PatchConflict(index, "value", f"test failed: {operation.pointer!r} does not hold the given value")
        return document
    if op == "remove":
        _get(document, path, index, "path")
        return _remove(document, path, index)
    if op == "replace":
        _get(document, path, index, "path")
        return _add(_remove(document, path, index), path, copy.deepcopy(operation.value), index)
    if op == "add":
        return _add(document, path, copy.deepcopy(operation.value), index)
    moved = copy.deepcopy(_get(document, operation.source, index, "from"))
    if op == "move":
        document = _remove(document, operation.source, index)
    return _add(document, path, moved, index)


def _child(container: object, token: str, index: int, member: str, for_add: bool = False) -> int | str:
    """The key of `token` in `container` (an array index or an object member)."""
    if isinstance(container, dict):
        return token
    if isinstance(container, list):
        if for_add and token == "-":
            return len(container)
        if not _INDEX.fullmatch(token):
            raise PatchConflict(index, member, f"{token!r} is not an array index")
        position = int(token)
        if position > len(container) or (position == len(container) and not for_add):
            raise PatchConflict(index, member, f"index {position} is past the end of the array")
        return position
    raise PatchConflict(index, member, f"{token!r}: the value it would be inside is neither an object nor an array")


def _get(document: object, path: tuple[str, ...], index: int, member: str) -> object:
    current = document
    for depth, token in enumerate(path):
        key = _child(current, token, index, member)
        if isinstance(current, dict) and key not in current:
            shown = "/" + "/".join(path[: depth + 1])
            raise PatchConflict(index, member, f"{shown!r} does not exist")
        current = current[key]  # type: ignore[index]
    return current


def _remove(document: object, path: tuple[str, ...], index: int) -> object:
    if not path:
        return None
    parent = _get(document, path[:-1], index, "path")
    key = _child(parent, path[-1], index, "path")
    del parent[key]  # type: ignore[attr-defined]
    return document


def _add(document: object, path: tuple[str, ...], value: object, index: int) -> object:
    if not path:
        return value
    parent = _get(document, path[:-1], index, "path")
    key = _child(parent, path[-1], index, "path", for_add=True)
    if isinstance(parent, list):
        parent.insert(key, value)  # type: ignore[arg-type]
    else:
        parent[key] = value  # type: ignore[index]
    return document

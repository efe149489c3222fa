"""JSON Patch: the examples of RFC 6902 appendix A, and each way a patch is refused."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushfuncs.json_patch import MalformedPatch, PatchConflict, apply_patch, json_equal, parse_patch


def patched(document: object, patch: list[dict[str, object]]) -> object:
    return apply_patch(document, parse_patch(patch))


@pytest.mark.parametrize(
    ("document", "patch", "expected"),
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (
            {"foo": ["all", "grass", "cows", "eat"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eat", "grass"]},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
        ),
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
        ({"a/b": 1}, [{"op": "copy", "from": "/a~1b", "path": "/c"}], {"a/b": 1, "c": 1}),
        ({"foo": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
        ({"foo": ["a", "b"]}, [{"op": "replace", "path": "/foo/1", "value": "c"}], {"foo": ["a", "c"]}),
    ],
)
def test_rfc_6902_examples(document: object, patch: list[dict[str, object]], expected: object) -> None:
    assert patched(document, patch) == expected


@pytest.mark.parametrize(
    ("document", "patch", "field"),
    [
        ({"foo": "bar"}, [{"op": "remove", "path": "/baz"}], "[0].path"),
        ({"foo": "bar"}, [{"op": "replace", "path": "/baz", "value": 1}], "[0].path"),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], "[0].path"),
        ({"foo": ["a"]}, [{"op": "add", "path": "/foo/2", "value": "x"}], "[0].path"),
        ({"foo": ["a"]}, [{"op": "remove", "path": "/foo/1"}], "[0].path"),
        ({"foo": ["a"]}, [{"op": "remove", "path": "/foo/-"}], "[0].path"),
        ({"foo": ["a"]}, [{"op": "add", "path": "/foo/01", "value": "x"}], "[0].path"),
        ({"foo": ["a"]}, [{"op": "add", "path": "/foo/x", "value": "x"}], "[0].path"),
        ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], "[0].value"),
        ({"n": 1}, [{"op": "test", "path": "/n", "value": True}], "[0].value"),
        ({"a": 1}, [{"op": "add", "path": "/b", "value": 2}, {"op": "move", "from": "/x", "path": "/c"}], "[1].from"),
    ],
)
def test_operations_that_do_not_apply_conflict_and_change_nothing(
    document: dict[str, object], patch: list[dict[str, object]], field: str
) -> None:
    before = repr(document)
    with pytest.raises(PatchConflict) as error:
        patched(document, patch)
    assert error.value.field == field
    assert repr(document) == before


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"op": "add"}, "[0]"),
        ([{"op": "merge", "path": "/a"}], "[0].op"),
        ([{"path": "/a", "value": 1}], "[0].op"),
        ([{"op": "add", "value": 1}], "[0].path"),
        ([{"op": "add", "path": "a", "value": 1}], "[0].path"),
        ([{"op": "add", "path": 3, "value": 1}], "[0].path"),
        ([{"op": "add", "path": "/a~2", "value": 1}], "[0].path"),
        ([{"op": "add", "path": "/a"}], "[0].value"),
        ([{"op": "test", "path": "/a"}], "[0].value"),
        ([{"op": "copy", "path": "/a"}], "[0].from"),
        ([{"op": "move", "from": "/a", "path": "/a/b"}], "[0].from"),
        (["add"], "[0]"),
    ],
)
def test_malformed_documents_are_refused(patch: object, field: str) -> None:
    with pytest.raises(MalformedPatch) as error:
        parse_patch(patch)
    assert error.value.field == field


def test_null_is_a_value_to_add_not_a_missing_one() -> None:
    assert patched({}, [{"op": "add", "path": "/a", "value": None}]) == {"a": None}


def test_json_equality_follows_json_types() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(1, True)
    assert not json_equal(0, False)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal("1", 1)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)


@given(document=_json, patch=_json)
def test_any_input_gives_a_value_or_a_patch_error(document: object, patch: object) -> None:
    with contextlib.suppress(MalformedPatch, PatchConflict):
        apply_patch(document, parse_patch(patch))

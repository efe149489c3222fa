"""Score mutmut's results per module, the way issue 18 counts them, and list the survivors.

mutmut keeps, for each mutated module, the mutated copy (`mutants/<path>`, every mutant a function
`x_<name>__mutmut_<n>` beside `x_<name>__mutmut_orig`) and the exit code of each mutant's test run
(`mutants/<path>.meta`). From those this prints, per module, the mutants killed, survived (or
reached by no test), marked equivalent and message-only, and the score

    killed / (all - equivalent - message-only)

A mutant is *message-only* when the only thing it changes is the wording of an error message: its
function's syntax tree equals the original's once the message argument of each error (of
`InvalidField`, `ApiError`, `NotFound`, `InvalidChannelUri`, `InvalidTagExpression`,
`TemplateError`, `ValueError`) is blanked. Those errors turn their message into text
(`"field: None"`), so a message made `None` is wording too, except for `ApiError` and `NotFound`,
whose message goes into the JSON body as it is. A mutant that drops the message argument (a
`TypeError`) or changes the field, code or status is counted.

A mutant is *equivalent* when `tests/mutation_equivalents.toml` has an entry for its function whose
`original` and `mutant` are the lines the mutant changes (as `mutmut show` prints them, stripped),
with a `reason`. Entries match by content, not by mutmut's numbering, so they survive edits
elsewhere in the function; an entry that matches nothing is reported as stale.

Usage: python scripts/mutation_report.py [--fail-under 90] [module ...]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
MODULES = [
    "pushfuncs/wns.py",
    "pushfuncs/channel_uri.py",
    "pushfuncs/tag_expression.py",
    "pushfuncs/templates.py",
    "pushfuncs/validation.py",
]

# The position (or keyword) of the human-readable message in each error type's constructor.
MESSAGE_ARGUMENT = {
    "ApiError": (2, "message"),
    "InvalidField": (1, "message"),
    "NotFound": (0, "message"),
    "InvalidChannelUri": (0, None),
    "InvalidTagExpression": (0, None),
    "TemplateError": (0, None),
    "ValueError": (0, None),
}

# These keep the message as given; the others turn it into text ("field: message", str(error)).
RAW_MESSAGE = {"ApiError", "NotFound"}

KILLED = {1, 3, -24, 152, 36, -9, 137}  # tests failed, or the mutant hung or was killed: a timeout
SURVIVED = {0, 33, 5}  # tests passed, no test reached it, or no test was selected


@dataclass
class ModuleScore:
    module: str
    killed: int = 0
    equivalent: int = 0
    message_only: int = 0
    survivors: list[tuple[str, str]] = field(default_factory=list)
    other: list[tuple[str, int | None]] = field(default_factory=list)

    @property
    def counted(self) -> int:
        return self.killed + len(self.survivors)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.counted if self.counted else 100.0


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name:
            found[node.name] = node
    return found


def _blank_messages(function: ast.AST) -> str:
    """The function's tree with each error message's text blanked and its name dropped."""
    function = ast.parse(ast.unparse(function)).body[0]
    function.name = "f"  # type: ignore[attr-defined]
    for node in ast.walk(function):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        position = MESSAGE_ARGUMENT.get(node.func.id)
        if position is None:
            continue
        index, keyword = position
        targets = [node.args[index]] if index < len(node.args) else []
        targets += [k.value for k in node.keywords if keyword is not None and k.arg == keyword]
        for target in targets:
            # Null stays null: an ApiError's message goes into the JSON body as it is.
            if node.func.id in RAW_MESSAGE and isinstance(target, ast.Constant) and target.value is None:
                continue
            for child in ast.walk(node):
                for name, value in ast.iter_fields(child):
                    if value is target:
                        setattr(child, name, ast.Constant(""))
                    elif isinstance(value, list) and any(item is target for item in value):
                        setattr(child, name, [ast.Constant("") if item is target else item for item in value])
    return ast.dump(function)


def _changed_lines(source: str, original: ast.AST, mutant: ast.AST) -> tuple[str, str]:
    lines = source.splitlines()

    def body(node: ast.AST) -> list[str]:
        return [line.strip() for line in lines[node.lineno : node.end_lineno]]  # type: ignore[attr-defined]

    removed, added = [], []
    for line in difflib.ndiff(body(original), body(mutant)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return "\n".join(removed), "\n".join(added)


def _function_name(mutant_name: str) -> str:
    """`x_render__mutmut_3` → `render`; `xǁTemplateǁto_dict__mutmut_2` → `Template.to_dict`."""
    name = mutant_name.rsplit("__mutmut_", 1)[0]
    if name.startswith("xǁ"):
        return ".".join(name[2:].split("ǁ"))
    return name[2:]


def score_module(module: str, equivalents: list[dict[str, str]], used: set[int]) -> ModuleScore | None:
    meta_path = MUTANTS / f"{module}.meta"
    if not meta_path.exists():
        return None
    exit_codes: dict[str, int | None] = json.loads(meta_path.read_text())["exit_code_by_key"]
    source = (MUTANTS / module).read_text()
    functions = _functions(ast.parse(source))
    result = ModuleScore(module)
    for key, exit_code in sorted(exit_codes.items()):
        mutant_name = key.rsplit(".", 1)[1]
        mutant = functions[mutant_name]
        original = functions[mutant_name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"]
        removed, added = _changed_lines(source, original, mutant)
        function_name = _function_name(mutant_name)
        match = next(
            (
                index
                for index, entry in enumerate(equivalents)
                if entry["module"] == module
                and entry["function"] == function_name
                and entry["original"].strip() == removed
                and entry["mutant"].strip() == added
            ),
            None,
        )
        if match is not None:
            used.add(match)
            result.equivalent += 1
        elif _blank_messages(original) == _blank_messages(mutant):
            result.message_only += 1
        elif exit_code in KILLED:
            result.killed += 1
        elif exit_code in SURVIVED:
            result.survivors.append((key, f"{function_name}:\n  - {removed}\n  + {added}"))
        else:
            result.other.append((key, exit_code))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=MODULES)
    parser.add_argument("--fail-under", type=float, default=None, help="exit 1 if a module scores below this")
    args = parser.parse_args(argv)

    equivalents = tomllib.loads(EQUIVALENTS.read_text())["equivalent"]
    for entry in equivalents:
        if not entry.get("reason", "").strip():
            print(f"equivalent mutant without a reason: {entry}", file=sys.stderr)
            return 2
    used: set[int] = set()
    scores = [s for m in args.modules if (s := score_module(m, equivalents, used)) is not None]
    if not scores:
        print("no mutation results: run `make mutate` first", file=sys.stderr)
        return 2

    for score in scores:
        for key, text in score.survivors:
            print(f"survived {key}\n  {text}")
        for key, exit_code in score.other:
            print(f"not run  {key} (mutmut exit code {exit_code})")
    print()
    print(f"{'module':<28}{'mutants':>8}{'killed':>8}{'survived':>9}{'equiv.':>8}{'message':>8}{'score':>8}")
    failed = False
    for s in scores:
        total = s.counted + s.equivalent + s.message_only + len(s.other)
        print(
            f"{s.module:<28}{total:>8}{s.killed:>8}{len(s.survivors):>9}{s.equivalent:>8}"
            f"{s.message_only:>8}{s.score:>7.1f}%"
        )
        failed |= bool(s.other) or (args.fail_under is not None and s.score < args.fail_under)
    ran = {s.module for s in scores}
    for index, entry in enumerate(equivalents):
        if index not in used and entry["module"] in ran:
            print(f"stale equivalent entry (matches no mutant): {entry['module']} {entry['function']}")
    if args.fail_under is not None:
        print(f"each module needs {args.fail_under:g}% or more: {'FAILED' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

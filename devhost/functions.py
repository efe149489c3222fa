"""What the host needs to know about each function, read from the app's own binding metadata."""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from devhost.settings import UnresolvedSettingError, resolve_expressions

SUPPORTED_TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger")
# Binding properties that name things rather than hold values, so `%X%` is not resolved in them.
_UNRESOLVED_PROPERTIES = {"name", "type", "direction", "connection"}
# Storage rules: 3-63 characters, lowercase letters, digits and single hyphens, alphanumeric ends.
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")


class FunctionLoadError(ValueError):
    """A function cannot run here; the host reports it and runs the others, as the real host does."""


@dataclass(frozen=True)
class QueueTarget:
    """A queue output binding."""

    binding_name: str
    queue_name: str
    connection: str | None


@dataclass(frozen=True)
class FunctionSpec:
    """One function: its code, its trigger binding (settings resolved) and its output bindings."""

    name: str
    function: Callable[..., Any]
    is_async: bool
    trigger_type: str
    trigger_arg: str
    trigger: Mapping[str, Any]
    trigger_annotation: Any
    queue_outputs: tuple[QueueTarget, ...]
    # "$return" when the return value is the HTTP response, a parameter name for func.Out[HttpResponse].
    http_output: str | None
    context_arg: str | None


def validate_queue_name(name: str) -> str:
    """The queue name lower-cased, as the host normalizes it; FunctionLoadError if storage would refuse it."""
    normalized = name.lower()
    if not _QUEUE_NAME.match(normalized):
        raise FunctionLoadError(
            f"Invalid queue name {name!r}: use 3-63 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit."
        )
    return normalized


def _resolve(binding: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    resolved = dict(binding)
    for key, value in binding.items():
        if key not in _UNRESOLVED_PROPERTIES and isinstance(value, str):
            resolved[key] = resolve_expressions(value, environ)
    return resolved


def _annotations(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable string annotations are just not used
        return dict(getattr(function, "__annotations__", {}))


def _is_context_parameter(parameter: inspect.Parameter, annotation: Any) -> bool:
    if parameter.name == "context":
        return True
    return isinstance(annotation, type) and issubclass(annotation, func.Context)


def describe_function(function: func.Function, environ: Mapping[str, str]) -> FunctionSpec:
    """Build the spec of one function; FunctionLoadError if it uses what the local host cannot run."""
    name = function.get_function_name()
    user_function = function.get_user_function()
    bindings = json.loads(function.get_function_json())["bindings"]
    try:
        bindings = [_resolve(b, environ) for b in bindings]
    except UnresolvedSettingError as error:
        raise FunctionLoadError(str(error)) from None

    triggers = [b for b in bindings if str(b["type"]).endswith("Trigger")]
    if len(triggers) != 1:
        raise FunctionLoadError(f"expected exactly one trigger, found {len(triggers)}")
    trigger = triggers[0]
    if trigger["type"] not in SUPPORTED_TRIGGERS:
        raise FunctionLoadError(f"the {trigger['type']} trigger is not supported by the local host")
    if trigger["type"] == "queueTrigger":
        trigger["queueName"] = validate_queue_name(trigger["queueName"])

    queue_outputs: list[QueueTarget] = []
    http_output: str | None = None
    for binding in bindings:
        if binding is trigger:
            continue
        direction, kind = str(binding["direction"]).upper(), binding["type"]
        if direction == "OUT" and kind == "queue":
            if "{" in binding["queueName"]:
                raise FunctionLoadError("binding expressions in queue names are not supported")
            queue_name = validate_queue_name(binding["queueName"])
            queue_outputs.append(QueueTarget(binding["name"], queue_name, binding.get("connection")))
        elif direction == "OUT" and kind == "http" and trigger["type"] == "httpTrigger":
            http_output = binding["name"]
        else:
            raise FunctionLoadError(
                f"the {kind} {direction.lower()} binding '{binding['name']}' is not supported by the local host"
            )

    annotations = _annotations(user_function)
    parameters = inspect.signature(user_function).parameters
    bound = {b["name"] for b in bindings} - {"$return"}
    context_arg: str | None = None
    for parameter in parameters.values():
        if parameter.name in bound:
            continue
        if _is_context_parameter(parameter, annotations.get(parameter.name)):
            context_arg = parameter.name
            continue
        if parameter.default is inspect.Parameter.empty:
            raise FunctionLoadError(f"parameter '{parameter.name}' has no binding")
    missing = sorted(bound - set(parameters))
    if missing:
        raise FunctionLoadError(f"binding(s) {', '.join(missing)} have no matching parameter")

    return FunctionSpec(
        name=name,
        function=user_function,
        is_async=inspect.iscoroutinefunction(user_function),
        trigger_type=trigger["type"],
        trigger_arg=trigger["name"],
        trigger=trigger,
        trigger_annotation=annotations.get(trigger["name"]),
        queue_outputs=tuple(queue_outputs),
        http_output=http_output,
        context_arg=context_arg,
    )


def describe_functions(
    functions: Sequence[func.Function], environ: Mapping[str, str]
) -> tuple[list[FunctionSpec], dict[str, str]]:
    """Specs of the functions that can run, and the reason each other one cannot."""
    specs: list[FunctionSpec] = []
    errors: dict[str, str] = {}
    for function in functions:
        try:
            specs.append(describe_function(function, environ))
        except FunctionLoadError as error:
            errors[function.get_function_name()] = str(error)
    return specs, errors

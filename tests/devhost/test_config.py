"""host.json options, settings resolution, message encoding and function metadata."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import azure.functions as func
import pytest

from devhost.functions import FunctionLoadError, describe_function, describe_functions
from devhost.hostconfig import QueueOptions, load_host_config
from devhost.settings import EnvironmentOverlay, UnresolvedSettingError, resolve_expressions
from devhost.storage import (
    ConnectionSettingError,
    MessageDecodeError,
    connection_string,
    decode_message,
    encode_message,
    output_messages,
)
from tests.devhost.sample_app import create_app


def test_defaults_without_host_json(tmp_path: Path) -> None:
    config = load_host_config(tmp_path, environ={})
    assert config.route_prefix == "api"
    queues = config.queues
    assert (queues.batch_size, queues.max_dequeue_count, queues.message_encoding) == (16, 5, "base64")
    assert queues.visibility_timeout == timedelta(0)
    assert queues.max_polling_interval == timedelta(minutes=1)
    assert queues.effective_new_batch_threshold == 8 * (os.cpu_count() or 1)


def test_host_json_values_are_read_case_insensitively(tmp_path: Path) -> None:
    document = {
        "Extensions": {
            "HTTP": {"routePrefix": "/v2/"},
            "queues": {
                "BatchSize": 8,
                "newBatchThreshold": 0,
                "maxDequeueCount": 2,
                "visibilityTimeout": "00:00:30",
                "maxPollingInterval": "00:00:02",
                "messageEncoding": "None",
            },
        },
        "functions": ["a", "b"],
    }
    (tmp_path / "host.json").write_text(json.dumps(document))
    config = load_host_config(tmp_path, environ={})
    assert config.route_prefix == "v2"
    assert config.functions == ("a", "b")
    assert config.queues == QueueOptions(8, 0, 2, timedelta(seconds=30), timedelta(seconds=2), "none")
    assert config.queues.effective_new_batch_threshold == 0


def test_environment_overrides_host_json(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": {"batchSize": 8}}}))
    environ = {
        "AzureFunctionsJobHost__extensions__queues__batchSize": "2",
        "AzureFunctionsJobHost__extensions__http__routePrefix": "",
    }
    config = load_host_config(tmp_path, environ=environ)
    assert config.queues.batch_size == 2
    assert config.route_prefix == ""


@pytest.mark.parametrize(
    "queues",
    [
        {"batchSize": 0},
        {"batchSize": 33},
        {"maxDequeueCount": 0},
        {"newBatchThreshold": -1},
        {"maxPollingInterval": "00:00:00.05"},
        {"maxPollingInterval": 2000},
        {"visibilityTimeout": "soon"},
        {"messageEncoding": "utf8"},
    ],
)
def test_invalid_queue_options(tmp_path: Path, queues: dict[str, object]) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": queues}}))
    with pytest.raises(ValueError):
        load_host_config(tmp_path, environ={})


def test_setting_expressions() -> None:
    environ = {"QUEUE": "deliveries", "ENV": "dev"}
    assert resolve_expressions("%QUEUE%", environ) == "deliveries"
    assert resolve_expressions("%QUEUE%-%ENV%", environ) == "deliveries-dev"
    assert resolve_expressions("plain", environ) == "plain"
    with pytest.raises(UnresolvedSettingError, match="'%MISSING%' does not resolve"):
        resolve_expressions("%MISSING%", environ)


def test_overlay_keeps_existing_variables_unless_told_and_restores() -> None:
    environ = {"KEEP": "mine"}
    overlay = EnvironmentOverlay(environ)
    assert overlay.apply({"KEEP": "theirs", "NEW": "1"}) == ["KEEP"]
    assert environ == {"KEEP": "mine", "NEW": "1"}
    overlay.apply({"KEEP": "theirs"}, override=True)
    assert environ["KEEP"] == "theirs"
    overlay.restore()
    assert environ == {"KEEP": "mine"}


def test_connection_setting_lookup() -> None:
    assert connection_string("AzureWebJobsStorage", {"AzureWebJobsStorage": "cs"}) == "cs"
    assert connection_string(None, {"AzureWebJobsStorage": "cs"}) == "cs"
    assert connection_string("Other", {"AzureWebJobsOther": "cs2"}) == "cs2"
    with pytest.raises(ConnectionSettingError, match="not defined"):
        connection_string("Missing", {})
    with pytest.raises(ConnectionSettingError, match="identity-based"):
        connection_string("Storage", {"Storage__queueServiceUri": "https://x"})


def test_message_encoding() -> None:
    assert encode_message('{"a":1}', "base64") == "eyJhIjoxfQ=="
    assert encode_message(b"\x00\xff", "base64") == "AP8="
    assert encode_message("plain", "none") == "plain"
    assert decode_message("eyJhIjoxfQ==", "base64") == b'{"a":1}'
    assert decode_message("eyJh\r\nIjoxfQ==", "base64") == b'{"a":1}'
    assert decode_message("plain", "none") == b"plain"
    for invalid in ("not base64!", "abc", '{"a":1}'):
        with pytest.raises(MessageDecodeError):
            decode_message(invalid, "base64")


def test_output_values_follow_the_worker() -> None:
    assert output_messages(None) == []
    assert output_messages("a") == ["a"]
    assert output_messages(b"b") == [b"b"]
    assert output_messages(["a", "b"]) == ["a", "b"]
    assert output_messages([func.QueueMessage(body="q")]) == [b"q"]
    with pytest.raises(TypeError):
        output_messages({"a": 1})
    with pytest.raises(TypeError):
        output_messages([b"bytes in a list"])


def test_sample_app_metadata() -> None:
    environ = {
        "OUT_QUEUE": "Out-Q",
        "WORK_QUEUE": "work",
        "TEXT_QUEUE": "text",
        "SLOW_QUEUE": "slow",
        "TICK_SCHEDULE": "* * * * * *",
    }
    specs, errors = describe_functions(create_app().get_functions(), environ)
    assert errors == {}
    by_name = {spec.name: spec for spec in specs}
    items = by_name["items"]
    assert items.trigger_type == "httpTrigger"
    assert items.trigger["methods"] == ["GET", "POST"]
    assert items.trigger["authLevel"] == "FUNCTION"
    assert items.http_output == "$return"
    assert [(t.binding_name, t.queue_name) for t in items.queue_outputs] == [("outbox", "out-q")]
    assert by_name["work"].trigger["queueName"] == "work"
    assert by_name["slow"].is_async and not by_name["work"].is_async
    assert by_name["text_queue"].trigger_annotation is str


def test_unresolved_setting_puts_only_that_function_in_error() -> None:
    environ = {"OUT_QUEUE": "out", "WORK_QUEUE": "work", "SLOW_QUEUE": "slow", "TICK_SCHEDULE": "* * * * * *"}
    specs, errors = describe_functions(create_app().get_functions(), environ)
    assert errors == {"text_queue": "'%TEXT_QUEUE%' does not resolve to a value."}
    assert "work" in {spec.name for spec in specs}


def _single_function_app(decorate: object) -> func.Function:
    app = func.FunctionApp()
    decorate(app)  # type: ignore[operator]
    (function,) = app.get_functions()
    return function


def test_unsupported_bindings_and_unbound_parameters_are_errors() -> None:
    def with_table_input(app: func.FunctionApp) -> None:
        @app.route(route="t")
        @app.table_input(arg_name="row", table_name="t", connection="AzureWebJobsStorage")
        def read(req: func.HttpRequest, row: str) -> str:
            return row

    def with_unbound_parameter(app: func.FunctionApp) -> None:
        @app.route(route="u")
        def handler(req: func.HttpRequest, extra: str) -> str:
            return extra

    def with_invalid_queue(app: func.FunctionApp) -> None:
        @app.queue_trigger(arg_name="msg", queue_name="No_Underscores", connection="AzureWebJobsStorage")
        def consume(msg: func.QueueMessage) -> None:
            pass

    for decorate, reason in [
        (with_table_input, "not supported"),
        (with_unbound_parameter, "has no binding"),
        (with_invalid_queue, "Invalid queue name"),
    ]:
        with pytest.raises(FunctionLoadError, match=reason):
            describe_function(_single_function_app(decorate), {})


def test_context_parameter_is_recognised() -> None:
    def with_context(app: func.FunctionApp) -> None:
        @app.route(route="c")
        def handler(req: func.HttpRequest, context: func.Context) -> str:
            return context.invocation_id

    spec = describe_function(_single_function_app(with_context), {})
    assert spec.context_arg == "context"

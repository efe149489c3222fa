"""Offline checks of the workbook and the alerts (infra/app/workbook.*, infra/app/alert*).

What a deployment alone would show too late: a workbook chart or an alert over a metric the app
never emits stays empty, or silent, without any error. So the names every query uses are checked
against the names the code emits, read from the source (`metrics.add(...)` calls and the
`metric` of each WNS rule), and the Functions host's `requests` rows against the functions the
app registers. The rest is the wiring: every alert notifies the action group when there is one,
thresholds are parameters, and main.bicep passes them on.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from pushfuncs.metrics import instrument_for
from tests.test_infra import INFRA, MAIN, REPO, body, chain, conditional, module_for, parse

APP = INFRA / "app"
WORKBOOK_BICEP = APP / "workbook.bicep"
WORKBOOK_JSON = APP / "workbook.json"
ALERTS_BICEP = APP / "alerts.bicep"
ALERT_QUERIES = {
    "domainBlockedAlert": APP / "alert-domain-blocked.kql",
    "failureRateAlert": APP / "alert-failure-rate.kql",
}
SOURCES = [REPO / "function_app.py", *sorted((REPO / "pushfuncs").rglob("*.py"))]
# Azure Storage's own metrics for a storage account's queue service (Azure Monitor reference,
# "Supported metrics for Microsoft.Storage/storageAccounts/queueServices"): the capacity ones,
# reported hourly, that say what waits.
QUEUE_SERVICE = "microsoft.storage/storageaccounts/queueservices"
QUEUE_SERVICE_METRICS = {"QueueMessageCount", "QueueCount", "QueueCapacity"}
DOUBLE_QUOTED = re.compile(r'"([^"\\]*)"')


# --- what the app emits, read from its source


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def _is_metrics_add(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr == "add" and chain_of(func.value) == "metrics"


def chain_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        left = chain_of(node.value)
        return None if left is None else f"{left}.{node.attr}"
    return None


@functools.cache
def emitted_metrics() -> frozenset[str]:
    """The OpenTelemetry names (customMetrics.name) of every count the code makes."""
    names: set[str] = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for call in _calls(tree):
            # A WNS outcome's name travels as `metric`: Rule(action, reason, metric) and metric=...
            if chain_of(call.func) == "Rule" and len(call.args) == 3 and isinstance(call.args[2], ast.Constant):
                names.add(call.args[2].value)
            for keyword in call.keywords:
                if keyword.arg == "metric" and isinstance(keyword.value, ast.Constant):
                    names.add(keyword.value.value)
            if not _is_metrics_add(call):
                continue
            name = call.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                names.add(name.value)
            elif isinstance(name, ast.JoinedStr) and ast.literal_eval(name.values[0]).startswith("storage."):
                names.add("storage.table.get")  # storage.<service>.<operation>: one counter for all
            elif isinstance(name, ast.Attribute) and name.attr == "metric":
                pass  # a WnsResult's metric: every one comes from a Rule or a metric= above
            else:
                raise AssertionError(
                    f"{path.relative_to(REPO)}:{call.lineno}: metrics.add({ast.unparse(name)}) names a metric "
                    "this test cannot read; give it a literal name"
                )
    return frozenset(instrument_for(name)[0] for name in names)


@functools.cache
def registered_functions() -> frozenset[str]:
    """Every @bp.function_name / @app.function_name: the `name` of the host's `requests` rows."""
    names = set()
    for path in SOURCES:
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            func = call.func
            if isinstance(func, ast.Attribute) and func.attr == "function_name" and call.args:
                names.add(ast.literal_eval(call.args[0]))
    return frozenset(names)


def test_the_source_scan_finds_what_the_readme_documents() -> None:
    """A scan that found nothing would make every query check below pass."""
    assert {
        "wns.success",
        "wns.domainblocked",
        "wns.badchannel",
        "wns.pnserror",
        "storage.requests",
        "token.entra.requests",
        "fanout.batches",
        "delivery.exhausted",
    } <= emitted_metrics()
    assert not any(name.startswith("storage.") and name != "storage.requests" for name in emitted_metrics())
    assert {"deliver_notifications", "expand_notification_targets", "refresh_wns_token"} <= registered_functions()


# --- the workbook


@functools.cache
def workbook() -> dict[str, Any]:
    return json.loads(WORKBOOK_JSON.read_text(encoding="utf-8"))


def workbook_items(items: list[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    """Every item, those inside groups (type 12) included."""
    for item in workbook()["items"] if items is None else items:
        yield item
        if item["type"] == 12:
            yield from workbook_items(item["content"]["items"])


def workbook_queries() -> list[tuple[str, str]]:
    return [(item["name"], item["content"]["query"]) for item in workbook_items() if item["type"] == 3]


def all_queries() -> list[tuple[str, str]]:
    return workbook_queries() + [(path.name, path.read_text(encoding="utf-8")) for path in ALERT_QUERIES.values()]


def test_workbook_is_a_notebook_whose_items_have_unique_names() -> None:
    assert workbook()["version"] == "Notebook/1.0"
    names = [item["name"] for item in workbook_items()]
    assert len(names) == len(set(names)), names
    assert {item["type"] for item in workbook_items()} <= {1, 3, 9, 10, 12}


def test_workbook_charts_follow_its_time_range_parameter() -> None:
    parameters = [p["name"] for item in workbook_items() if item["type"] == 9 for p in item["content"]["parameters"]]
    assert "TimeRange" in parameters
    charts = [item for item in workbook_items() if item["type"] in (3, 10)]
    assert charts
    for item in charts:
        assert item["content"]["timeContextFromParameter"] == "TimeRange", item["name"]


def test_workbook_shows_what_the_issue_asks_for() -> None:
    """Deliveries, failures by reason, token refreshes, the backlog, p95 delivery time."""
    queries = dict(workbook_queries())
    assert 'name startswith "wns."' in queries["wns-answers"]
    assert "by name" in queries["failures-by-reason"] and '"wns.success"' in queries["failures-by-reason"]
    assert '"token.entra.requests"' in queries["token-refreshes"]
    assert "percentile(duration, 95)" in queries["delivery-duration"]
    backlog = [m["metric"] for item in workbook_items() if item["type"] == 10 for m in item["content"]["metrics"]]
    assert f"{QUEUE_SERVICE}--QueueMessageCount" in backlog


@pytest.mark.parametrize("name_and_query", all_queries(), ids=lambda nq: nq[0])
def test_every_query_names_only_what_the_app_emits(name_and_query: tuple[str, str]) -> None:
    name, query = name_and_query
    assert "'" not in query, f"{name}: write string literals in double quotes, so this test reads them all"
    table = query.split("\n", 1)[0].strip()
    literals = DOUBLE_QUOTED.findall(query)
    assert literals, f"{name}: a query that names nothing cannot be checked"
    if table == "customMetrics":
        assert re.search(r"\|\s*where\b[^|]*\bname\b", query), f"{name}: filter customMetrics on name"
        for literal in literals:
            if literal.endswith("."):
                assert any(m.startswith(literal) for m in emitted_metrics()), f"{name}: no metric starts {literal!r}"
            else:
                assert literal in emitted_metrics(), f"{name}: the app emits no metric {literal!r}"
    elif table == "requests":
        for literal in literals:
            assert literal in registered_functions(), f"{name}: the app registers no function {literal!r}"
    else:
        raise AssertionError(f"{name}: reads {table!r}; only customMetrics and requests are checked")


def test_every_metric_chart_names_a_queue_service_metric_of_the_template_storage_account() -> None:
    charts = [item["content"] for item in workbook_items() if item["type"] == 10]
    assert charts
    for chart in charts:
        assert chart["resourceType"] == QUEUE_SERVICE
        assert chart["resourceIds"] == ["__QUEUE_SERVICE_ID__"]
        for metric in chart["metrics"]:
            namespace, _, metric_name = metric["metric"].partition("--")
            assert metric["namespace"] == namespace == QUEUE_SERVICE
            assert metric_name in QUEUE_SERVICE_METRICS, metric_name


def _replacements(node: Any) -> dict[str, Any]:
    """old -> new of nested replace() calls, down to the loadTextContent they wrap."""
    found = {}
    while isinstance(node, dict) and node.get("function", {}).get("type") == "replace":
        parameters = node["function"]["parameters"]
        found[parameters["old_string"]] = parameters["new_string"]
        node = parameters["original_string"]
    assert node["function"]["type"] == "load_text_content", node
    found["<file>"] = node["function"]["parameters"]["file_path"]
    return found


def test_workbook_resource_loads_the_json_and_fills_in_every_placeholder() -> None:
    tree = parse(WORKBOOK_BICEP)
    (workbook_resource,) = [r for r in tree["resources"].values() if r["type"] == "Microsoft.Insights/workbooks"]
    props = body(workbook_resource)
    assert props["kind"] == "shared"
    assert props["properties"]["category"] == "workbook"
    assert chain(props["properties"]["sourceId"]) == ["applicationInsights", "id"]
    assert props["properties"]["serializedData"] == "serializedData"
    filled = _replacements(tree["variables"]["serializedData"]["value"])
    assert filled.pop("<file>") == WORKBOOK_JSON.name
    placeholders = set(re.findall(r"__[A-Z_]+__", WORKBOOK_JSON.read_text(encoding="utf-8")))
    assert set(filled) == placeholders == {"__APP_INSIGHTS_ID__", "__QUEUE_SERVICE_ID__"}
    assert chain(filled["__APP_INSIGHTS_ID__"]) == ["applicationInsights", "id"]
    assert filled["__QUEUE_SERVICE_ID__"] == "${storage.id}/queueServices/default"
    existing = {symbol: r for symbol, r in tree["resources"].items() if r["existing"]}
    assert existing["applicationInsights"]["type"] == "Microsoft.Insights/components"
    assert existing["storage"]["type"] == "Microsoft.Storage/storageAccounts"


def test_main_deploys_the_workbook_over_the_template_resources() -> None:
    _, module = module_for(WORKBOOK_BICEP)
    params = module["params"]
    assert chain(params["applicationInsightsName"]) == ["monitoring", "outputs", "applicationInsightsName"]
    assert chain(params["storageAccountName"]) == ["storage", "outputs", "name"]
    # A workbook's resource name must be a GUID; a stable one, so redeploying updates it.
    assert params["name"]["function"]["type"] == "guid"


# --- the alerts and their action group


def alerts_tree() -> dict[str, Any]:
    return parse(ALERTS_BICEP)


def alert_rules() -> dict[str, dict[str, Any]]:
    return {
        symbol: body(resource)
        for symbol, resource in alerts_tree()["resources"].items()
        if resource["type"] == "Microsoft.Insights/scheduledQueryRules"
    }


def test_there_is_one_alert_per_query_file() -> None:
    assert set(alert_rules()) == set(ALERT_QUERIES)


def test_the_action_group_exists_only_with_an_address_and_emails_it() -> None:
    tree = alerts_tree()
    group = tree["resources"]["actionGroup"]
    assert group["type"] == "Microsoft.Insights/actionGroups"
    condition = group["config"]["condition"]["operator"]
    assert condition["type"] == "not"
    assert condition["operands"]["bool_value"]["function"]["parameters"]["item_to_test"] == "alertEmailAddress"
    (receiver,) = body(group)["properties"]["emailReceivers"]
    assert receiver["emailAddress"] == "alertEmailAddress"
    assert len(body(group)["properties"]["groupShortName"]) <= 12  # Azure's limit
    assert tree["parameters"]["alertEmailAddress"]["default"] == ""


@pytest.mark.parametrize("symbol", sorted(ALERT_QUERIES))
def test_every_alert_notifies_the_action_group_when_there_is_one(symbol: str) -> None:
    rule = alert_rules()[symbol]
    assert rule["properties"]["actions"]["actionGroups"] == "actionGroups"
    empty_address, when_empty, when_given = conditional(alerts_tree()["variables"]["actionGroups"]["value"])
    assert empty_address["function"] == {"type": "empty", "parameters": {"item_to_test": "alertEmailAddress"}}
    assert when_empty == []
    assert [chain(ref) for ref in when_given] == [["actionGroup", "id"]]


@pytest.mark.parametrize("symbol", sorted(ALERT_QUERIES))
def test_every_alert_queries_the_app_insights_component_with_its_query_file(symbol: str) -> None:
    rule = alert_rules()[symbol]
    props = rule["properties"]
    assert rule["kind"] == "LogAlert"
    assert props["enabled"] is True
    assert [chain(scope) for scope in props["scopes"]] == [["applicationInsights", "id"]]
    (criterion,) = props["criteria"]["allOf"]
    filled = _replacements(criterion["query"])
    assert filled.pop("<file>") == ALERT_QUERIES[symbol].name
    text = ALERT_QUERIES[symbol].read_text(encoding="utf-8")
    assert set(re.findall(r"__[A-Z_]+__", text)) == set(filled), "every placeholder filled, and only those"
    # The column the rule measures is one the query makes.
    assert re.search(rf"\b{criterion['metricMeasureColumn']}\s*=", text), criterion["metricMeasureColumn"]
    assert criterion["operator"] == "GreaterThan"


def test_domain_blocked_alerts_on_the_first_one_at_top_severity_and_stays_open() -> None:
    props = alert_rules()["domainBlockedAlert"]["properties"]
    (criterion,) = props["criteria"]["allOf"]
    assert criterion["threshold"] == 0
    assert '"wns.domainblocked"' in ALERT_QUERIES["domainBlockedAlert"].read_text(encoding="utf-8")
    assert props["severity"] == 0
    # Sending stays suspended until an operator resumes it: the alert must not close by itself.
    assert props["autoMitigate"] is False


def test_failure_rate_threshold_and_minimum_volume_are_parameters_of_main() -> None:
    tree = alerts_tree()
    (criterion,) = alert_rules()["failureRateAlert"]["properties"]["criteria"]["allOf"]
    assert criterion["threshold"] == "failureRateThresholdPercent"
    filled = _replacements(criterion["query"])
    minimum = filled["__MINIMUM_ANSWERS__"]["function"]
    assert minimum == {"type": "string", "parameters": {"value_to_convert": "failureRateMinimumAnswers"}}
    for name in ("failureRateThresholdPercent", "failureRateMinimumAnswers"):
        assert name in tree["parameters"]
    _, module = module_for(ALERTS_BICEP)
    main_params = parse(MAIN)["parameters"]
    passed = {
        "failureRateThresholdPercent": "failureRateAlertPercent",
        "failureRateMinimumAnswers": "failureRateAlertMinimumAnswers",
        "alertEmailAddress": "alertEmailAddress",
    }
    for module_param, main_param in passed.items():
        assert module["params"][module_param] == main_param
        assert main_param in main_params
    assert main_params["alertEmailAddress"]["default"] == ""
    assert 1 <= main_params["failureRateAlertPercent"]["default"] <= 100
    assert chain(module["params"]["applicationInsightsName"]) == ["monitoring", "outputs", "applicationInsightsName"]

"""Offline checks of the Bicep templates under infra/, azure.yaml and main.parameters.json.

The Bicep CLI is not available offline, so every .bicep file is parsed with pycep-parser
and the security properties are asserted on the parsed tree. This proves the files are
syntactically Bicep and say what we intend; it does not prove that Azure accepts them
(no type checking, no resource-schema validation, no deployment). See infra/README.md.

Two limits of pycep-parser shape these checks:
- A bare identifier and a string literal come out the same (`scope: storage` and
  `scope: 'storage'` are both "storage"). Checks that follow a reference confirm the
  name is a declared symbol; a literal of that spelling would not be valid Bicep there.
- Interpolated strings are kept as raw text ("@Microsoft.KeyVault(VaultName=${v.name};"),
  so their pieces are checked with regular expressions on that text.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lark.exceptions import LarkError
from pycep import BicepParser

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Settings in local.settings.sample.json that must not be set in Azure.
LOCAL_ONLY_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex takes the runtime from functionAppConfig.runtime and rejects this setting",
    "IDENTITY_ENDPOINT": "set by the platform in Azure; locally it points at the sandbox identity endpoint",
    "IDENTITY_HEADER": "set by the platform in Azure, paired with IDENTITY_ENDPOINT",
    "SSL_CERT_FILE": "trusts the local sandbox CA only",
    "REQUESTS_CA_BUNDLE": "trusts the local sandbox CA only",
}
# Settings that exist only in Azure.
AZURE_ONLY_SETTINGS = {
    "AZURE_CLIENT_ID": "identity selection, Azure only",
    # Locally, without them, pushfuncs/telemetry.py exports nothing: counters stay at GET /api/metrics.
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "telemetry target of the host and the app's counters, Azure only",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra auth for telemetry (local auth is disabled), Azure only",
}
# The local connection string becomes identity-based settings of that prefix in Azure.
IDENTITY_STORAGE_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
}
# Settings Flex Consumption does not allow (functions-app-settings, Flex deprecations).
FLEX_FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
    "TZ",
}

STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
STORAGE = "Microsoft.Storage/storageAccounts"
VAULT = "Microsoft.KeyVault/vaults"
APP_INSIGHTS = "Microsoft.Insights/components"
# The only roles any principal may hold, and on which kind of resource.
ALLOWED_ROLES_BY_SCOPE = {
    STORAGE: {
        STORAGE_BLOB_DATA_OWNER,
        STORAGE_QUEUE_DATA_CONTRIBUTOR,
        STORAGE_TABLE_DATA_CONTRIBUTOR,
    },
    VAULT: {KEY_VAULT_SECRETS_OFFICER, KEY_VAULT_SECRETS_USER},
    APP_INSIGHTS: {MONITORING_METRICS_PUBLISHER},
}
# What the app's identity must be granted, no more and no less.
APP_GRANTS = {
    (STORAGE, STORAGE_BLOB_DATA_OWNER),
    (STORAGE, STORAGE_QUEUE_DATA_CONTRIBUTOR),
    (STORAGE, STORAGE_TABLE_DATA_CONTRIBUTOR),
    (VAULT, KEY_VAULT_SECRETS_OFFICER),
    (APP_INSIGHTS, MONITORING_METRICS_PUBLISHER),
}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --- reading the templates


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    """The pycep tree of one .bicep file, parsed once per test run."""
    try:
        return BicepParser().parse(file_path=path)
    except LarkError as error:
        # Every check that reads this file then fails with its name, not a bare lark error.
        raise AssertionError(f"{rel(path)} does not parse: {type(error).__name__}: {error}") from None


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's own properties, unwrapped from `if (...)` and `[for ...]`."""
    config = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def declared_resources() -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(file, symbol, resource) for every resource declared in any template."""
    for path in BICEP_FILES:
        for symbol, resource in parse(path).get("resources", {}).items():
            yield path, symbol, resource


def the_one(resource_type: str) -> tuple[Path, str, dict[str, Any]]:
    """The one resource of this type the templates create (not an `existing` one)."""
    found = [
        (path, symbol, resource)
        for path, symbol, resource in declared_resources()
        if resource["type"] == resource_type and not resource["existing"]
    ]
    assert len(found) == 1, f"expected one {resource_type}, found {[(rel(p), s) for p, s, _ in found]}"
    return found[0]


def properties(resource_type: str) -> dict[str, Any]:
    return body(the_one(resource_type)[2])["properties"]


def chain(node: Any) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"] when the node is a plain property access."""
    if isinstance(node, str):
        return [node]
    operator = node.get("operator") if isinstance(node, dict) else None
    if not operator or operator.get("type") != "property_accessor":
        return None
    left = chain(operator["operands"]["operand_1"])
    right = chain(operator["operands"]["operand_2"])
    return None if left is None or right is None else left + right


def walk(node: Any) -> Iterator[Any]:
    """Every node of a parsed tree, keys of mappings included."""
    yield node
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def site() -> tuple[Path, dict[str, Any]]:
    path, _, resource = the_one("Microsoft.Web/sites")
    return path, body(resource)


@functools.cache
def app_settings() -> dict[str, Any]:
    """Name -> parsed value of every app setting on the Function App."""
    path, config = site()
    entries = config["properties"]["siteConfig"]["appSettings"]
    assert isinstance(entries, list), f"{rel(path)}: appSettings must be a literal list to be checked"
    names = [entry["name"] for entry in entries]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"{rel(path)}: app settings set twice: {sorted(duplicates)}"
    return {entry["name"]: entry["value"] for entry in entries}


def sample_settings() -> dict[str, str]:
    return json.loads((REPO / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]


def module_for(path: Path) -> tuple[str, dict[str, Any]]:
    """The module declaration in main.bicep that deploys this file."""
    for symbol, module in parse(MAIN).get("modules", {}).items():
        if module["type"] == "local" and (MAIN.parent / module["detail"]["path"]).resolve() == path.resolve():
            return symbol, body(module)
    raise AssertionError(f"main.bicep deploys no module from {rel(path)}")


def main_default_through_module(path: Path, module_param: str) -> Any:
    """Default of the main.bicep parameter passed to `module_param` of file `path`."""
    _, module = module_for(path)
    argument = module["params"].get(module_param)
    main_params = parse(MAIN)["parameters"]
    assert argument in main_params, f"main.bicep passes {argument!r} to {module_param}, not a parameter"
    return main_params[argument]["default"]


def identity_symbol(path: Path) -> str:
    """The user-assigned identity symbol declared in a file (the app's one identity)."""
    symbols = [
        symbol
        for symbol, resource in parse(path)["resources"].items()
        if resource["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    ]
    assert len(symbols) == 1, f"{rel(path)}: expected one user-assigned identity, found {symbols}"
    return symbols[0]


# --- every template parses


def test_the_templates_exist() -> None:
    assert MAIN in BICEP_FILES
    assert len(BICEP_FILES) > 1, "main.bicep is expected to deploy modules from infra/app/"


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_bicep_file_parses(path: Path) -> None:
    tree = parse(path)
    assert tree.get("resources") or tree.get("modules"), f"{rel(path)} declares nothing"


# --- storage


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("allowSharedKeyAccess", False),
        ("allowBlobPublicAccess", False),
        ("minimumTlsVersion", "TLS1_2"),
        ("supportsHttpsTrafficOnly", True),
    ],
)
def test_storage_account_is_hardened(name: str, expected: object) -> None:
    value = properties(STORAGE).get(name)
    # The type check matters: the parser gives booleans as bool, and 'false' is not false.
    assert value == expected and type(value) is type(expected), f"{name} is {value!r}"


def test_deployment_container_is_private() -> None:
    container = body(the_one(f"{STORAGE}/blobServices/containers")[2])
    assert container["properties"]["publicAccess"] == "None"


def test_no_storage_key_or_connection_string_anywhere() -> None:
    assert "AzureWebJobsStorage" not in app_settings(), "host storage must be identity-based in Azure"
    for path in BICEP_FILES:
        for node in walk(parse(path)):
            assert not (isinstance(node, str) and "accountkey" in node.lower()), f"{rel(path)}: {node!r}"
            # listKeys(), listAccountSas(), listConnectionStrings(): all give out keys.
            if isinstance(node, dict) and isinstance(node.get("func_name"), str):
                assert not node["func_name"].lower().startswith("list"), f"{rel(path)}: {node['func_name']}()"
        # Interpolations are raw text in the tree (see the module docstring).
        assert ".listKeys(" not in path.read_text(encoding="utf-8"), rel(path)


def test_queues_and_tables_are_created_with_the_names_the_app_is_given() -> None:
    storage_file, _, _ = the_one(STORAGE)
    _, storage_module = module_for(storage_file)
    site_file, _ = site()
    _, api_module = module_for(site_file)
    queue_args = storage_module["params"]["queueNames"]
    table_args = storage_module["params"]["tableNames"]
    sample = sample_settings()
    created: dict[str, str] = {}
    for setting, created_from in [
        ("DELIVERY_QUEUE", queue_args),
        ("FANOUT_QUEUE", queue_args),
        ("INSTALLATIONS_TABLE", table_args),
        ("NOTIFICATIONS_TABLE", table_args),
        ("INDEX_TABLE", table_args),
    ]:
        api_param = app_settings()[setting]
        main_param = api_module["params"][api_param]
        assert main_param in created_from, f"{setting} comes from {main_param}, which is not created"
        if created_from is queue_args:
            assert f"${{{main_param}}}-poison" in queue_args, f"no poison queue for {setting}"
        created[setting] = main_default_through_module(site_file, api_param)
    assert created == {setting: sample[setting] for setting in created}


# --- Key Vault


@pytest.mark.parametrize("name", ["enableRbacAuthorization", "enableSoftDelete", "enablePurgeProtection"])
def test_key_vault_is_hardened(name: str) -> None:
    assert properties(VAULT).get(name) is True, f"{name} is {properties(VAULT).get(name)!r}"


def test_key_vault_has_no_access_policies() -> None:
    assert "accessPolicies" not in properties(VAULT), "access is by RBAC only"


# --- the Function App


def test_site_is_a_python_flex_consumption_app() -> None:
    path, config = site()
    assert config["kind"] == "functionapp,linux"
    plan = body(the_one("Microsoft.Web/serverfarms")[2])
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    runtime = config["properties"]["functionAppConfig"]["runtime"]
    assert runtime["name"] == "python"
    assert main_default_through_module(path, runtime["version"]) == "3.13"
    scale = config["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert main_default_through_module(path, scale["instanceMemoryMB"]) == 2048
    assert scale["maximumInstanceCount"] in parse(path)["parameters"], "max instance count is a parameter"


def test_site_is_https_only_with_modern_tls() -> None:
    _, config = site()
    assert config["properties"]["httpsOnly"] is True
    site_config = config["properties"]["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    assert site_config["scmMinTlsVersion"] == "1.2"
    assert site_config["ftpsState"] == "Disabled"


def test_site_serves_http2_and_names_its_health_check() -> None:
    site_config = site()[1]["properties"]["siteConfig"]
    assert site_config["http20Enabled"] is True
    assert site_config["healthCheckPath"] == "/api/health"
    assert "health" in {route for route in _anonymous_routes()}, "the health check must not need a key"


def _anonymous_routes() -> set[str]:
    from tests.harness import FUNCTIONS

    routes = set()
    for function in FUNCTIONS.values():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger" and binding.get("authLevel") == "ANONYMOUS":
                routes.add(binding["route"])
    return routes


def test_basic_publishing_credentials_are_disabled() -> None:
    policies = {
        body(resource)["name"]: body(resource)["properties"]["allow"]
        for _, _, resource in declared_resources()
        if resource["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    }
    assert policies == {"scm": False, "ftp": False}


def test_site_uses_the_user_assigned_identity_everywhere() -> None:
    path, config = site()
    identity = identity_symbol(path)
    assert config["identity"]["type"] == "UserAssigned"
    assert list(config["identity"]["userAssignedIdentities"]) == [f"'${{{identity}.id}}'"]
    assert chain(config["properties"].get("keyVaultReferenceIdentity")) == [
        identity,
        "id",
    ]
    deployment = config["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"
    assert chain(deployment["authentication"]["userAssignedIdentityResourceId"]) == [
        identity,
        "id",
    ]
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    for name in ("AzureWebJobsStorage__clientId", "AZURE_CLIENT_ID"):
        assert chain(settings[name]) == [identity, "properties", "clientId"], name
    assert re.fullmatch(
        rf"ClientId=\$\{{{identity}\.properties\.clientId\}};Authorization=AAD",
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"],
    )


def test_the_identity_the_site_uses_is_the_one_granted_roles() -> None:
    site_file, _ = site()
    _, api_module = module_for(site_file)
    rbac_file = next(path for path, _, r in declared_resources() if r["type"].endswith("/roleAssignments"))
    _, rbac_module = module_for(rbac_file)
    identity_module = chain(api_module["params"]["identityName"])
    assert identity_module is not None and identity_module[1:] == ["outputs", "name"]
    assert chain(rbac_module["params"]["appPrincipalId"]) == [
        identity_module[0],
        "outputs",
        "principalId",
    ]


def test_client_secret_is_a_key_vault_reference() -> None:
    path, _ = site()
    value = app_settings()["WNS_CLIENT_SECRET"]
    assert isinstance(value, str) and value.startswith("@Microsoft.KeyVault("), value
    match = re.fullmatch(
        r"@Microsoft\.KeyVault\(VaultName=\$\{(\w+)\.name\};SecretName=\$\{(\w+)\}\)",
        value,
    )
    assert match, f"unexpected reference form: {value}"
    vault_symbol, secret_param = match.groups()
    assert parse(path)["resources"][vault_symbol]["type"] == VAULT
    assert main_default_through_module(path, secret_param) == "wns-client-secret"
    assert chain(app_settings()["KEY_VAULT_URL"]) == [
        vault_symbol,
        "properties",
        "vaultUri",
    ]


def test_azure_values_of_wns_settings() -> None:
    path, _ = site()
    assert (
        main_default_through_module(path, app_settings()["WNS_AUTHORITY_HOST"]) == "https://login.microsoftonline.com"
    )
    assert main_default_through_module(path, app_settings()["WNS_ALLOWED_HOSTS"]) == "*.notify.windows.com"
    token_secret = main_default_through_module(path, app_settings()["WNS_TOKEN_SECRET_NAME"])
    assert token_secret == sample_settings()["WNS_TOKEN_SECRET_NAME"]
    for required in ("WNS_TENANT_ID", "WNS_CLIENT_ID"):
        assert main_default_through_module(path, app_settings()[required]) is None, f"{required} has no default"


def test_app_settings_match_the_local_sample() -> None:
    sample = set(sample_settings())
    assert set(LOCAL_ONLY_SETTINGS) <= sample, "an exclusion names a setting the sample no longer has"
    expected = (sample - set(LOCAL_ONLY_SETTINGS) - {"AzureWebJobsStorage"}) | IDENTITY_STORAGE_SETTINGS
    actual = set(app_settings()) - set(AZURE_ONLY_SETTINGS)
    assert actual == expected, (
        f"missing in infra/app/api.bicep: {sorted(expected - actual)}; "
        f"not in local.settings.sample.json: {sorted(actual - expected)}"
    )
    assert set(AZURE_ONLY_SETTINGS) <= set(app_settings())


def test_local_only_and_flex_forbidden_settings_are_absent_in_azure() -> None:
    present = (set(LOCAL_ONLY_SETTINGS) | FLEX_FORBIDDEN_SETTINGS) & set(app_settings())
    assert not present, f"must not be set on a Flex app in Azure: {sorted(present)}"


# --- role assignments


def role_assignments() -> list[tuple[Path, str, dict[str, Any]]]:
    found = [
        (path, symbol, body(resource))
        for path, symbol, resource in declared_resources()
        if resource["type"] == "Microsoft.Authorization/roleAssignments"
    ]
    assert found, "no role assignments found"
    return found


def role_id(path: Path, assignment: dict[str, Any]) -> str:
    """The role definition GUID, following `roleDefinitions.x` into the variables."""
    function = assignment["properties"]["roleDefinitionId"]["function"]
    assert function["type"] == "subscription_resource_id"
    assert function["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    name = function["parameters"]["resource_name_1"]
    reference = chain(name)
    if reference and len(reference) == 2:
        name = parse(path)["variables"][reference[0]]["value"][reference[1]]
    assert isinstance(name, str) and GUID.match(name), f"not a role definition id: {name!r}"
    return name


def scope_type(path: Path, assignment: dict[str, Any]) -> str:
    scope = assignment.get("scope")
    assert isinstance(scope, str), f"scope must name one resource, got {scope!r} (absent = resource group)"
    resource = parse(path)["resources"].get(scope)
    assert resource is not None, f"scope {scope!r} is not a resource declared in {rel(path)}"
    return resource["type"]


def test_every_role_assignment_is_scoped_to_one_resource_with_an_allowed_role() -> None:
    for path, symbol, assignment in role_assignments():
        where = f"{rel(path)}:{symbol}"
        resource_type = scope_type(path, assignment)
        assert resource_type in ALLOWED_ROLES_BY_SCOPE, f"{where}: scoped to a {resource_type}"
        role = role_id(path, assignment)
        assert role in ALLOWED_ROLES_BY_SCOPE[resource_type], f"{where}: role {role} on a {resource_type}"
        assert assignment["name"]["function"]["type"] == "guid", f"{where}: name must be a stable guid()"
        assert assignment["properties"].get("principalType"), f"{where}: principalType avoids replication races"


def test_app_identity_gets_exactly_the_roles_it_needs() -> None:
    granted = {
        (scope_type(path, assignment), role_id(path, assignment))
        for path, _, assignment in role_assignments()
        if assignment["properties"]["principalId"] == "appPrincipalId"
    }
    assert granted == APP_GRANTS
    for path, _, assignment in role_assignments():
        if assignment["properties"]["principalId"] == "appPrincipalId":
            assert assignment["properties"]["principalType"] == "ServicePrincipal", rel(path)


# --- main.bicep wiring, parameters, outputs


def test_parameters_file_covers_every_required_parameter() -> None:
    declared = parse(MAIN)["parameters"]
    required = {name for name, param in declared.items() if param["default"] is None}
    given = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert required <= set(given), f"main.parameters.json lacks {sorted(required - set(given))}"
    assert set(given) <= set(declared), f"main.parameters.json sets unknown {sorted(set(given) - set(declared))}"


def test_modules_get_the_parameters_they_declare() -> None:
    """What `bicep build` would reject: unknown or missing params, unknown outputs."""
    modules = parse(MAIN)["modules"]
    for symbol, module in modules.items():
        assert module["type"] == "local", f"{symbol}: only local modules can be checked offline"
        target = parse(MAIN.parent / module["detail"]["path"])
        declared = target.get("parameters", {})
        passed = set(body(module)["params"])
        required = {name for name, param in declared.items() if param["default"] is None}
        assert passed <= set(declared), f"{symbol}: unknown params {sorted(passed - set(declared))}"
        assert required <= passed, f"{symbol}: missing params {sorted(required - passed)}"
    for node in walk(parse(MAIN)):
        reference = chain(node) if isinstance(node, dict) else None
        if reference and len(reference) == 3 and reference[0] in modules and reference[1] == "outputs":
            outputs = parse(MAIN.parent / modules[reference[0]]["detail"]["path"]).get("outputs", {})
            assert reference[2] in outputs, f"main.bicep reads {'.'.join(reference)}, which is not an output"


def test_abbreviations_used_in_names_exist() -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text(encoding="utf-8"))
    used = {
        key for node in walk(parse(MAIN)) if isinstance(node, str) for key in re.findall(r"\$\{abbrs\.(\w+)\}", node)
    }
    assert used and used <= set(abbreviations), f"unknown abbreviations: {sorted(used - set(abbreviations))}"


def test_outputs_the_deploy_steps_need() -> None:
    outputs = set(parse(MAIN)["outputs"])
    needed = {
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_KEY_VAULT_NAME",
        "AZURE_KEY_VAULT_URL",
        "AZURE_STORAGE_ACCOUNT_NAME",
    }
    assert needed <= outputs, f"missing outputs: {sorted(needed - outputs)}"


# --- azure.yaml


def read_block_yaml(text: str) -> dict[str, Any]:
    """Read the subset of YAML azure.yaml uses: nested mappings of plain scalars.

    PyYAML is not a dependency here; anything outside this subset is rejected
    rather than misread.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        match = re.fullmatch(r"([A-Za-z_][\w.-]*):(?:\s+(\S.*))?", line.strip())
        if not match or (match.group(2) or "")[:1] in {
            "-",
            "[",
            "{",
            "|",
            ">",
            "&",
            "*",
            "!",
        }:
            raise ValueError(f"azure.yaml line {number} is outside the supported subset: {raw!r}")
        while indent <= stack[-1][0]:
            stack.pop()
        key, value = match.groups()
        parent = stack[-1][1]
        if value is None:
            parent[key] = {}
            stack.append((indent, parent[key]))
        else:
            parent[key] = value.strip("'\"")
    return root


def test_azure_yaml_deploys_the_repo_root_as_a_python_function_app() -> None:
    project = read_block_yaml((REPO / "azure.yaml").read_text(encoding="utf-8"))
    services = project["services"]
    assert list(services) == ["api"]
    service = services["api"]
    assert service == {"project": ".", "language": "python", "host": "function"}
    root = (REPO / service["project"]).resolve()
    assert root == REPO and (root / "host.json").is_file() and (root / "requirements.txt").is_file()
    # azd finds the app to deploy to by this tag.
    _, config = site()
    extra_tags = config["tags"]["function"]["parameters"]["arg_2"]
    assert extra_tags == {"'azd-service-name'": "api"}


# --- the network-isolated option (vnetEnabled)


def conditional(node: Any) -> tuple[Any, Any, Any]:
    """(condition, value if true, value if false) of a `c ? a : b` node."""
    operator = node.get("operator") if isinstance(node, dict) else None
    assert operator and operator["type"] == "conditional", f"{node!r} is not `condition ? a : b`"
    operands = operator["operands"]
    return operands["condition"], operands["true_value"], operands["false_value"]


def main_modules() -> dict[str, dict[str, Any]]:
    return parse(MAIN)["modules"]


def test_network_isolation_is_a_parameter_off_by_default() -> None:
    assert parse(MAIN)["parameters"]["vnetEnabled"]["default"] is False


def test_isolated_storage_has_no_public_endpoint() -> None:
    storage_file, _, _ = the_one(STORAGE)
    assert module_for(storage_file)[1]["params"]["vnetEnabled"] == "vnetEnabled"
    props = properties(STORAGE)
    assert conditional(props["publicNetworkAccess"]) == ("vnetEnabled", "Disabled", "Enabled")
    assert conditional(props["networkAcls"]["defaultAction"]) == ("vnetEnabled", "Deny", "Allow")


def test_isolated_app_joins_the_delegated_subnet() -> None:
    vnet_file, _, vnet_resource = the_one("Microsoft.Network/virtualNetworks")
    names = {symbol: v["value"] for symbol, v in parse(vnet_file)["variables"].items()}
    subnets = {names.get(s["name"], s["name"]): s["properties"] for s in body(vnet_resource)["properties"]["subnets"]}
    assert [d["properties"]["serviceName"] for d in subnets["app"]["delegations"]] == ["Microsoft.App/environments"]
    assert "delegations" not in subnets["private-endpoints"]
    assert main_modules()["vnet"]["config"]["condition"] == "vnetEnabled"
    site_file, config = site()
    _, api_module = module_for(site_file)
    condition, when_on, when_off = conditional(api_module["params"]["virtualNetworkSubnetId"])
    assert (condition, chain(when_on), when_off) == ("vnetEnabled", ["vnet", "outputs", "appSubnetId"], "")
    # `empty(id) ? null : id`: no integration without a subnet.
    _, when_empty, when_given = conditional(config["properties"]["virtualNetworkSubnetId"])
    assert (when_empty, when_given) == (None, "virtualNetworkSubnetId")


def test_isolated_storage_and_vault_get_private_endpoints_with_dns_zones() -> None:
    endpoint_file = INFRA / "app" / "private-endpoint.bicep"
    resources = {r["type"] for r in parse(endpoint_file)["resources"].values()}
    assert {
        "Microsoft.Network/privateEndpoints",
        "Microsoft.Network/privateDnsZones",
        "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
    } <= resources
    storage_loop = main_modules()["storagePrivateEndpoints"]
    loop = storage_loop["config"]["loop_type"]["detail"]
    condition, items, nothing = conditional(loop["array_name"])
    assert (condition, items, nothing) == ("vnetEnabled", "privateEndpoints", [])
    groups = {entry["groupId"]: entry["zone"] for entry in parse(MAIN)["variables"]["privateEndpoints"]["value"]}
    assert set(groups) == {"blob", "queue", "table"}, "one endpoint per storage service the app uses"
    assert all(zone.startswith(f"privatelink.{group}.") for group, zone in groups.items())
    assert chain(body(storage_loop)["params"]["targetResourceId"]) == ["storage", "outputs", "id"]
    vault = main_modules()["keyVaultPrivateEndpoint"]
    assert vault["config"]["condition"] == "vnetEnabled"
    assert body(vault)["params"]["groupId"] == "vault"
    assert body(vault)["params"]["privateDnsZoneName"] == "privatelink.vaultcore.azure.net"
    assert chain(body(vault)["params"]["targetResourceId"]) == ["keyVault", "outputs", "id"]


def test_every_checkov_skip_gives_a_reason() -> None:
    skips = [
        (rel(path), match)
        for path in BICEP_FILES
        for match in re.findall(r"checkov:skip=([^\n]*)", path.read_text(encoding="utf-8"))
    ]
    assert skips, "the skips are expected to be read from the templates"
    for where, skip in skips:
        assert re.fullmatch(r"CKV_AZURE_\d+: \S.{20,}", skip), f"{where}: skip without a reason: {skip!r}"

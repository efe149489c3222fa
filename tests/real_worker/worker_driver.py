"""Runs the app inside Microsoft's Python worker (`azure-functions-runtime`), fed as the platform feeds it.

The platform's proxy worker turns the host's gRPC messages into protobuf objects and calls the
runtime's `worker_init_request`, `functions_metadata_request` and `invocation_request`; this
script does the same with messages compiled from the host's own .proto files. It runs in a
process of its own, because the worker imports `function_app` and indexes it itself.

Protocol, one JSON document per line: first it prints `{"metadata": [...]}` (each
RpcFunctionMetadata in protobuf's JSON form, as the host receives it); then for each
`{"function": name, "inputData": [...], "triggerMetadata": {...}}` line read, it prints the
InvocationResponse in the same form.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import tempfile
import types
import uuid
from pathlib import Path
from typing import Any

import azure_functions_runtime as runtime
import grpc_tools
from google.protobuf import json_format
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent / "protos"
PROTO_FILES = ("FunctionRpc.proto", "shared/NullableTypes.proto", "identity/ClaimsIdentityRpc.proto")


def compile_protos(out: Path) -> types.SimpleNamespace:
    """The host's messages as one namespace of classes, as the proxy worker passes them (`protos`)."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    status = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out}", *PROTO_FILES])
    if status != 0:
        raise RuntimeError(f"protoc failed with {status}")
    sys.path.insert(0, str(out))
    namespace = types.SimpleNamespace()
    for module_name in ("FunctionRpc_pb2", "shared.NullableTypes_pb2", "identity.ClaimsIdentityRpc_pb2"):
        module = importlib.import_module(module_name)
        for name in module.DESCRIPTOR.message_types_by_name:
            setattr(namespace, name, getattr(module, name))
    return namespace


def message(protos: types.SimpleNamespace, **fields: Any) -> types.SimpleNamespace:
    """What the proxy worker hands the runtime: the StreamingMessage and its properties."""
    return types.SimpleNamespace(
        request=protos.StreamingMessage(**fields), properties={"host": "127.0.0.1", "protos": protos}
    )


def as_json(value: Any) -> dict[str, Any]:
    return json_format.MessageToDict(value, preserving_proto_field_name=False)


async def serve(app_directory: str, protos: types.SimpleNamespace) -> None:
    runtime.start_threadpool_executor()
    init = await runtime.worker_init_request(
        message(protos, worker_init_request=protos.WorkerInitRequest(function_app_directory=app_directory))
    )
    if init.result.status != protos.StatusResult.Success:
        raise RuntimeError(f"worker init failed: {init.result.exception.message}")
    metadata = await runtime.functions_metadata_request(
        message(protos, functions_metadata_request=protos.FunctionsMetadataRequest())
    )
    functions = {m.name: m.function_id for m in metadata.function_metadata_results}
    print(json.dumps({"metadata": [as_json(m) for m in metadata.function_metadata_results]}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        call = json.loads(line)
        request = json_format.ParseDict(
            {"inputData": call.get("inputData", []), "triggerMetadata": call.get("triggerMetadata", {})},
            protos.InvocationRequest(),
        )
        request.invocation_id = str(uuid.uuid4())
        request.function_id = functions[call["function"]]
        response = await runtime.invocation_request(message(protos, invocation_request=request))
        print(json.dumps(as_json(response)), flush=True)


def main() -> None:
    app_directory = sys.argv[1]
    sys.path.insert(0, app_directory)
    with tempfile.TemporaryDirectory(prefix="function-rpc-") as out:
        asyncio.run(serve(app_directory, compile_protos(Path(out))))


if __name__ == "__main__":
    main()

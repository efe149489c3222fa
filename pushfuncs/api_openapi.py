"""HTTP: GET /api/openapi.json -- the OpenAPI 3.1 document of this API (function key, like every route but health)."""

from __future__ import annotations

import functools
from pathlib import Path

import azure.functions as func

bp = func.Blueprint()

DOCUMENT = Path(__file__).with_name("openapi.json")


@functools.cache
def openapi_document() -> bytes:
    """The document's bytes, read on first use and kept for the life of the process."""
    return DOCUMENT.read_bytes()


@bp.function_name("get_openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        openapi_document(),
        status_code=200,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )

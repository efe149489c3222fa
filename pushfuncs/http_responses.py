"""JSON answers and the one place that turns exceptions into HTTP errors."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable

import azure.functions as func
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from pushfuncs.errors import ApiError, StorageUnavailable

logger = logging.getLogger(__name__)

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers=headers,
    )


def error_response(error: ApiError) -> func.HttpResponse:
    return json_response(error.status, error.to_body(), error.headers or None)


def _is_storage_outage(error: Exception) -> bool:
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return True
    return isinstance(error, HttpResponseError) and (error.status_code or 0) >= 500


def api_handler(handler: Handler) -> Handler:
    """Answer every failure with a JSON error: 4xx for the client's mistakes, 503 for outages."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(req)
        except ApiError as error:
            return error_response(error)
        except Exception as error:
            if _is_storage_outage(error):
                logger.warning("storage unavailable: %s", type(error).__name__)
                return error_response(StorageUnavailable())
            logger.exception("unhandled error in %s", handler.__name__)
            return error_response(ApiError(500, "InternalError", "internal error; it has been logged"))

    return wrapper

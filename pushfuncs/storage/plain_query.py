"""A table query's rows as plain JSON values: no per-property conversion by the SDK.

The SDK turns each entity into a `TableEntity`, deserializing every property and parsing every
date with `strptime`: for the fan-out, which reads pages of up to 1,000 index rows per send, that
was about a third of a tag send's CPU (measured in bench/). Here the service is asked for no
metadata (`odata=nometadata`: values as JSON, dates as ISO 8601 strings) through the table
client's own pipeline (its credentials, retries and transport), and the caller converts only the
columns it reads. Nothing else of the SDK is bypassed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import AsyncHttpResponse as HttpResponse
from azure.core.rest import HttpRequest
from azure.data.tables.aio import TableClient

PAGE_LIMIT = 1000  # the service's most entities per response
_NEXT_PARTITION_KEY = "x-ms-continuation-NextPartitionKey"
_NEXT_ROW_KEY = "x-ms-continuation-NextRowKey"


# (filter, select, top) -> rows: `query_rows` bound to a table.
RowQuery = Callable[[str, Iterable[str] | None, int], AsyncIterator[dict[str, Any]]]


_HEADERS = {
    "Accept": "application/json;odata=nometadata",
    "DataServiceVersion": "3.0",
    "x-ms-version": "2019-02-02",
}


async def send_to_table(
    table: TableClient, method: str, target: str, content: bytes | None = None, ok: tuple[int, ...] = (200,)
) -> HttpResponse:
    """One request through the table client's own pipeline (its credentials, retries and
    transport), answered in plain JSON. Raises `ResourceNotFoundError` for a missing table,
    `HttpResponseError` for any other status not in `ok`."""
    headers = {**_HEADERS, "Content-Type": "application/json"} if content is not None else _HEADERS
    request = HttpRequest(method, target, headers=headers, content=content)
    response = await table._client.send_request(request)  # the generated client's `send_request`
    if response.status_code == 404:
        raise ResourceNotFoundError(response=response)
    if response.status_code not in ok:
        raise HttpResponseError(response=response)
    return response


def quoted(value: str) -> str:
    """A string literal of an OData filter."""
    return "'" + value.replace("'", "''") + "'"


async def query_rows(
    table: TableClient, filter: str, select: Iterable[str] | None = None, top: int = PAGE_LIMIT
) -> AsyncIterator[dict[str, Any]]:
    """Every entity matching `filter` (following continuations), `top` per response at most."""
    params = {"$filter": filter, "$top": str(min(top, PAGE_LIMIT))}
    if select is not None:
        params["$select"] = ",".join(select)
    path = f"/{quote(table.table_name, safe='')}()"
    while True:
        # Encoded here: `HttpRequest(params=...)` joins values as given, and a `%27`, `&` or `#`
        # in a value must reach the service as data, never as syntax.
        response = await send_to_table(table, "GET", f"{path}?{urlencode(params, quote_via=quote, safe='')}")
        for row in json.loads(response.body())["value"]:
            yield row
        continuation = {
            "NextPartitionKey": response.headers.get(_NEXT_PARTITION_KEY),
            "NextRowKey": response.headers.get(_NEXT_ROW_KEY),
        }
        if not any(continuation.values()):
            return
        for name, value in continuation.items():
            if value:
                params[name] = value
            else:
                params.pop(name, None)

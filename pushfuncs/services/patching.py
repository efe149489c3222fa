"""PATCH an installation with JSON Patch (RFC 6902), atomically and validated like a PUT.

The patch is applied to the installation as a PUT body would state it (`channelUri`, `userId`,
`tags`, `expiresAt`, `templates`), and the result goes through the very parser a PUT body goes
through, so no patch can store what a PUT could not. `update_installation` re-applies the patch
to whatever a concurrent writer stored, so a concurrent PUT or PATCH is never lost
(tests/integration/test_patch_installation.py races concurrent patches of one installation).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from pushfuncs.channel_uri import HostPattern
from pushfuncs.errors import ApiError, NotFound
from pushfuncs.json_patch import MalformedPatch, Operation, PatchConflict, apply_patch, parse_patch
from pushfuncs.services.registration import update_installation
from pushfuncs.storage.index import IndexStore
from pushfuncs.storage.installations import Installation, InstallationStore
from pushfuncs.validation import InstallationRequest, parse_installation_request, parse_json_value

# Members a device may not change: its userId is its user's object id, from the token.
DEVICE_FIXED_MEMBERS = ("userId",)


def parse_patch_body(body: bytes) -> list[Operation]:
    """The operations of a JSON Patch request body, or a 400 naming the operation at fault."""
    try:
        return parse_patch(parse_json_value(body))
    except MalformedPatch as error:
        raise ApiError(400, "InvalidPatch", f"patch{error.field}: {error.message}", f"patch{error.field}") from None


def installation_document(installation: Installation) -> dict[str, object]:
    """The installation as a PUT body would state it: what a patch's paths point into."""
    document: dict[str, object] = {
        "channelUri": installation.channel_uri,
        "tags": list(installation.tags),
        "expiresAt": installation.expires_at.isoformat().replace("+00:00", "Z"),
        "templates": {name: template.to_dict() for name, template in installation.templates.items()},
    }
    if installation.user_id is not None:
        document["userId"] = installation.user_id
    return document


def refuse_fixed_members(operations: list[Operation]) -> None:
    """A device may test its `userId`, never change it (nor replace the whole document)."""
    for index, operation in enumerate(operations):
        if operation.op == "test":
            continue
        touched = [operation.path] + ([operation.source] if operation.op == "move" else [])
        if any(not path or path[0] in DEVICE_FIXED_MEMBERS for path in touched):
            raise ApiError(
                403,
                "ReadOnlyMember",
                f"patch[{index}].path: a device's userId comes from its token; it cannot be changed",
                f"patch[{index}].path",
            )


async def patch_installation(
    store: InstallationStore,
    index: IndexStore,
    installation_id: str,
    operations: list[Operation],
    allowed_hosts: tuple[HostPattern, ...],
    now: datetime,
    owner: str | None = None,
    device_user_id: str | None = None,
) -> Installation:
    """Apply `operations` to the registered installation and store the result.

    404 if it is not registered (or its channel expired), 409 `PatchConflict` if an operation
    does not apply to it, 400 if the result is not a valid installation. A device (`owner`,
    `device_user_id`) patches only its own and keeps its user."""
    if device_user_id is not None:
        refuse_fixed_members(operations)

    def change(current: Installation | None) -> InstallationRequest:
        if current is None or not current.is_live(now):
            raise NotFound(
                f"installation {installation_id!r} is not registered or its channel expired", "InstallationNotFound"
            )
        try:
            patched = apply_patch(installation_document(current), operations)
        except PatchConflict as error:
            field = f"patch{error.field}"
            raise ApiError(409, "PatchConflict", f"{field}: {error.message}", field) from None
        try:
            request = parse_installation_request(json.dumps(patched).encode(), allowed_hosts, now)
        except ApiError as error:
            if error.status != 413:
                raise
            # No valid installation is that large (each member has its limit), and the client
            # sent no such body: say what is wrong with the result instead.
            message = "patch: the patched installation is larger than any valid one"
            raise ApiError(400, "InvalidField", message, "patch") from None
        return request if device_user_id is None else replace(request, user_id=device_user_id)

    installation, _ = await update_installation(store, index, installation_id, change, now, owner=owner)
    return installation

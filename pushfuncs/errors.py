"""Errors that become HTTP answers: a client's mistake is a 4xx naming the field at fault."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API answers with `{"error": {"code", "message", "field"?}}`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers: dict[str, str] = {}

    def to_body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class InvalidField(ApiError):
    """400: one field of the request is wrong."""

    def __init__(self, field: str, message: str, code: str = "InvalidField") -> None:
        super().__init__(400, code, f"{field}: {message}", field)


class NotFound(ApiError):
    def __init__(self, message: str, code: str = "NotFound") -> None:
        super().__init__(404, code, message)


class StorageUnavailable(ApiError):
    """503: storage could not be reached; nothing was accepted, the client may retry."""

    def __init__(self) -> None:
        super().__init__(503, "StorageUnavailable", "storage is unavailable; nothing was stored, retry later")


class NotOwner(ApiError):
    """The installation id is registered to another owner (a device may write only its own)."""

    def __init__(self) -> None:
        super().__init__(
            403, "InstallationNotOwned", "this installation id is registered to another user; use an id of your own"
        )

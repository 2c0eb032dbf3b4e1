"""Exception hierarchy shared by the engine and the CLI.

Every error the CLI reports derives from LcqError, carries the exit code the CLI
uses and, where there is one, the next step for the user (``hint``). Messages
never contain an API key or a JWT.
"""

from __future__ import annotations


class LcqError(Exception):
    """Base class of every error lcq reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class UsageError(LcqError):
    """Raised for invalid flags, arguments or environment values (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """Raised when a setting from the environment or a flag is invalid."""


# --- LimaCharlie search API -------------------------------------------------


class ApiError(LcqError):
    """Raised for a failed call to the search API.

    Carries what a user needs to report the failure: the HTTP status (None for
    network errors), the query id, the host and the oid.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        query_id: str | None = None,
        host: str | None = None,
        oid: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.query_id = query_id
        self.host = host
        self.oid = oid

    def __str__(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (
                ("status", self.status),
                ("query_id", self.query_id),
                ("host", self.host),
                ("oid", self.oid),
            )
            if value is not None
        ]
        text = self.message
        if context:
            text = f"{text} ({', '.join(context)})"
        if self.hint:
            text = f"{text}; {self.hint}"
        return text


class TransientApiError(ApiError):
    """Raised for errors worth retrying: 5xx, resets, timeouts, TLS errors."""


class RateLimitedError(ApiError):
    """Raised on HTTP 429; ``retry_after`` is the server's delay in seconds."""

    def __init__(self, message: str, *, retry_after: float, **context) -> None:
        super().__init__(message, status=429, **context)
        self.retry_after = retry_after


class PermanentApiError(ApiError):
    """Raised for errors that a retry cannot fix: 400, 403, 404 on start, 422."""


class AuthError(PermanentApiError):
    """Raised when the API rejects the credentials, after one JWT refresh."""


class SearchEngineError(PermanentApiError):
    """Raised when a poll body carries an ``error`` from the search engine."""


class QueryNotFoundError(ApiError):
    """Raised when the server no longer knows a query id (404 on poll).

    The client recovers from it by starting a fresh query with the same token.
    """


class TokenRejectedError(PermanentApiError):
    """Raised when the server rejects a pagination token as invalid or expired."""


# --- checkpoint files -------------------------------------------------------


class CheckpointError(LcqError):
    """Raised for a checkpoint that cannot be created, read or written."""


class CheckpointExistsError(CheckpointError):
    """Raised when a checkpoint already exists at the requested path."""

    exit_code = 2


class CorruptCheckpointError(CheckpointError):
    """Raised for a data file or metadata file that fails validation."""


class UnsafePathError(CheckpointError):
    """Raised for a symlink, or a file of the wrong kind, at a checkpoint path."""

    exit_code = 2


class DiskFullError(CheckpointError):
    """Raised when an append fails for lack of space; committed data is intact."""


# --- Redis state and the job chain --------------------------------------------


class StateError(LcqError):
    """Raised when the Redis state cannot be reached or is inconsistent."""


class SearchNotFoundError(LcqError):
    """Raised when a search id or checkpoint path names no known search."""

    exit_code = 2


class SearchCanceledError(LcqError):
    """Raised inside a page job when the search was canceled while it ran."""


class WrongOrgError(LcqError):
    """Raised when a worker's credentials belong to an org other than the search's."""

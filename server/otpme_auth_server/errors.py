"""The server's exceptions: a small flat set, each with a text that is safe to show.

No exception text ever contains a password, an OTP or a secret.
"""


class ServerError(Exception):
    """Base class of every error raised on purpose by otpme_auth_server."""


class ConfigError(ServerError):
    """The server directory or its configuration is missing or invalid."""


class StoreError(ServerError):
    """The store could not be opened or a statement failed."""


class StoreBusy(StoreError):
    """SQLite's write lock is held by another process; the unit of work may be retried."""


class NotFound(ServerError):
    """An object named by the administrator or the client does not exist."""


class AlreadyExists(ServerError):
    """An object with that name exists already."""


class InvalidValue(ServerError):
    """A value given by the administrator is not acceptable (the text says why)."""


class BadRequest(ServerError):
    """A protocol request is malformed; ``code`` is the documented error code."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status

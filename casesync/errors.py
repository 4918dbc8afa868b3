"""One exception hierarchy, and the one table that maps it to exit codes.

Every error a user can meet is a ``CasesyncError``: ``__main__`` prints its message (and hint)
on one line and exits with its ``exit_code``. Nothing else in casesync calls ``sys.exit``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (README, "Exit codes")."""

    OK = 0
    ERROR = 1  # config, network, auth, unexpected
    CHANGES_PRESENT = 2  # plan --detailed-exitcode only
    INVALID = 3  # validation failed (manifests, files, PHI gate)
    PARTIAL = 4  # apply partially failed
    REFUSED = 5  # lock held, plan checksum mismatch, over quota, unsafe change, no --yes
    INTERRUPTED = 130


class CasesyncError(Exception):
    """Base of every error casesync reports; ``hint`` says how to fix it."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        from casesync.wording import with_hint

        return with_hint(self.message, self.hint)


class ConfigError(CasesyncError):
    """The project, flags or environment are unusable (no casesync.yaml, bad URL, ...)."""


class ValidationFailed(CasesyncError):
    """Manifests or referenced files are invalid; the problems were already reported."""

    exit_code = ExitCode.INVALID


class LockfileError(CasesyncError):
    """casesync.lock or the journal is corrupt, from a newer casesync, or for another API."""


class StateWriteError(LockfileError):
    """casesync.lock, the journal or the apply lock cannot be written (disk full, read-only)."""


class Refused(CasesyncError):
    """casesync declines to act: lock held, stale plan, over quota, no confirmation."""

    exit_code = ExitCode.REFUSED


class PartialFailure(CasesyncError):
    """apply finished, but some cases failed or were skipped."""

    exit_code = ExitCode.PARTIAL


class Interrupted(CasesyncError):
    """The user (or CI) asked casesync to stop."""

    exit_code = ExitCode.INTERRUPTED


class AuthError(CasesyncError):
    """No usable credentials, or the server refused them."""


class ApiError(CasesyncError):
    """The Radiopaedia API (or S3) answered with an error, or could not be reached.

    The message carries method, path, status and the trimmed response body, never a token.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        body: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.method = method
        self.path = path
        self.status = status
        self.body = body


class FileChanged(CasesyncError):
    """A file's bytes are no longer those validated, PHI-checked and planned: not uploaded."""

    def __init__(self, display: str, found: str) -> None:
        super().__init__(
            f"{display} changed since it was checked ({found}); it was not uploaded",
            hint="run 'casesync plan' again: it checks the new content before anything is sent",
        )


class OutcomeUnknown(ApiError):
    """A create was sent but no answer arrived: it may or may not exist on the server."""


class OverQuota(ApiError):
    """The server refused a case because the user's draft quota is used up."""

    exit_code = ExitCode.REFUSED

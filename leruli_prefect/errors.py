"""The one error hierarchy of leruli-prefect.

Each edge translates these: gateway routes into HTTP statuses, the CLI into exit codes, the worker into a
state message. Chain with `raise ... from exc` so the cause stays visible.
"""

from __future__ import annotations


class LeruliError(Exception):
    """Base of every error we raise on purpose; its message is meant for the user."""


class ConfigurationError(LeruliError):
    """A setting is missing or malformed (environment, node.toml, command-line option)."""


class GatewayError(LeruliError):
    """The gateway answered with an error; `status` is the HTTP status, the message its `detail`."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(GatewayError):
    """The gateway did not accept the credential (HTTP 401)."""


class StorageError(LeruliError):
    """S3 refused or failed an operation on job data."""


class StorageUnavailableError(StorageError):
    """S3 stayed unreachable past the node's `storage_retry_seconds`: the job's reason is exactly this."""

    def __init__(self) -> None:
        super().__init__("storage unavailable")


class NodeDiskFullError(LeruliError):
    """The node's data disk filled up while it handled a job."""

    def __init__(self) -> None:
        super().__init__("no space left on node")


class UnsafeArchiveError(LeruliError):
    """`run.tgz` holds an entry that would escape the run directory or is not a plain file or directory."""


class SubmissionError(LeruliError):
    """A directory cannot be submitted as it is (already submitted, reserved names used, ...)."""


class JobFailedError(LeruliError):
    """A job ended in another state than Completed; `job` is its final view (state and reason)."""

    def __init__(self, message: str, job: object) -> None:
        super().__init__(message)
        self.job = job

"""Where the CLI finds its credentials: `LERULI_*` variables first, then the OS keyring (`leruli login`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from leruli_prefect.client import GatewayClient
from leruli_prefect.errors import ConfigurationError
from leruli_prefect.settings import Settings
from leruli_prefect.storage.s3_client import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEYRING_SERVICE = "leruli"


def api_secret(settings: Settings) -> str | None:
    """`LERULI_API_SECRET` wins over the keyring, so scripts and CI can override a stored login."""
    if settings.api_secret is not None:
        return settings.api_secret.get_secret_value()
    try:
        import keyring
        import keyring.errors

        return keyring.get_password(KEYRING_SERVICE, settings.baseurl)
    except keyring.errors.KeyringError:
        return None  # no usable keyring: nothing stored there


def store_api_secret(settings: Settings, secret: str) -> str:
    """Keep the API secret in the OS keyring for this gateway; returns the keyring's name."""
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, settings.baseurl, secret)
    except keyring.errors.KeyringError as exc:
        raise ConfigurationError(
            f"no usable keyring on this machine ({exc}); set LERULI_API_SECRET in your environment instead"
        ) from exc
    return type(keyring.get_keyring()).__name__


def require_keyring() -> None:
    """Refuse before anything that cannot be undone when there is no keyring to keep a new secret in."""
    import keyring
    from keyring.backends import fail

    if isinstance(keyring.get_keyring(), fail.Keyring):
        raise ConfigurationError(
            "no usable keyring on this machine to keep a new API secret in; set LERULI_API_SECRET to your"
            " current one instead (the new one is then printed for you to put there)"
        )


def gateway_client(settings: Settings) -> GatewayClient:
    return GatewayClient(
        settings.baseurl,
        api_secret=api_secret(settings),
        group_token=settings.group_token.get_secret_value() if settings.group_token else None,
    )


def s3_client(settings: Settings) -> S3Client:
    secret = settings.s3_secret.get_secret_value() if settings.s3_secret else None
    return make_s3_client(settings.s3_server, settings.s3_access, secret)

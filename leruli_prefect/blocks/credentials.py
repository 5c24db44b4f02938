"""`LeruliCredentials`: a gateway's URL and the secrets a researcher uses there, kept as a Prefect block."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from leruli_prefect.client import GatewayClient
from leruli_prefect.settings import Settings


class LeruliCredentials(Block):
    """The Leruli gateway to talk to and who you are there: your API secret (to submit and cancel jobs) and
    your group's token (to read the group's jobs).

    Example:
        Load stored credentials and submit a job with them:
        ```python
        from leruli_prefect import submit
        from leruli_prefect.blocks import LeruliCredentials

        credentials = LeruliCredentials.load("BLOCK_NAME")
        job = submit("water/", "xtb", "6.5.1", "xtb water.xyz --opt", credentials=credentials)
        ```
    """

    _block_type_name = "Leruli Credentials"

    gateway_url: str = Field(
        default="http://127.0.0.1:4300",
        description="The gateway's base URL, as in LERULI_BASEURL, e.g. http://127.0.0.1:4300.",
    )
    api_secret: SecretStr | None = Field(
        default=None,
        description="Your API secret (lq_user_...), as in LERULI_API_SECRET; needed to submit and cancel.",
    )
    group_token: SecretStr | None = Field(
        default=None,
        description="Your group's token (lq_group_...), as in LERULI_GROUP_TOKEN; enough to read job states.",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> LeruliCredentials:
        """The credentials the `LERULI_*` environment holds (what the CLI would use)."""
        return cls(
            gateway_url=settings.baseurl, api_secret=settings.api_secret, group_token=settings.group_token
        )

    def gateway_client(self) -> GatewayClient:
        """A client for the gateway with these credentials; close it (or use `with`) when done."""
        return GatewayClient(
            self.gateway_url,
            api_secret=self.api_secret.get_secret_value() if self.api_secret else None,
            group_token=self.group_token.get_secret_value() if self.group_token else None,
        )

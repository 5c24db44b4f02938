"""The gateway: the only door to a leruli-prefect server (REST API /v1, Prefect API and UI behind it)."""

"""leruli-prefect: a multi-tenant job queue for scientific container jobs, built on Prefect 3."""

__version__ = "0.1.0"

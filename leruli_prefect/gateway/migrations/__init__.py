"""Alembic migrations of the gateway's tables (`leruli_*`); applied at server start."""

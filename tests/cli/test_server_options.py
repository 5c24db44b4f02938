"""`leruli server start` refuses database, Redis and load settings that cannot work, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack import cli

POSTGRES = "postgresql+asyncpg://leruli:secret@127.0.0.1:5432/leruli"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--redis-url", "redis://127.0.0.1:6379/0"], "--redis-url is for several server processes"),
        (["--database-url", "sqlite:///x.db"], "--database-url must be a postgresql+asyncpg://"),
        (
            ["--database-url", POSTGRES, "--redis-url", "http://127.0.0.1:6379"],
            "--redis-url must be a redis://",
        ),
        (["--max-in-flight", "0"], "max_in_flight: Input should be greater than or equal to 1"),
    ],
)
def test_bad_database_or_redis_settings_are_refused(options: list[str], message: str, tmp_path: Path) -> None:
    result = cli("server", "start", "--port", "1", "--data-dir", str(tmp_path / "data"), *options)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr

"""Narrow units of the Python API with fakes: polling back-off, input packing, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from leruli_prefect import api
from leruli_prefect.errors import SubmissionError
from leruli_prefect.job_spec import JobView


def view(state: str) -> JobView:
    fields: dict[str, Any] = dict.fromkeys(JobView.model_fields)
    return JobView.model_validate({**fields, "id": uuid4(), "name": "run", "state": state})


class FakeGateway:
    def __init__(self, states: list[str]) -> None:
        self.states = states

    def job(self, job_id: object) -> JobView:
        return view(self.states.pop(0))

    def __enter__(self) -> FakeGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def test_wait_backs_off_to_a_ceiling_and_returns_the_final_view(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    gateway = FakeGateway(["Scheduled", "Pending", *["Running"] * 6, "Completed"])
    monkeypatch.setattr(api, "gateway_client_for", lambda credentials: gateway)
    monkeypatch.setattr(api.time, "sleep", pauses.append)

    final = api.wait("some-id", first_poll_s=1, max_poll_s=4)

    assert final.state == "Completed"
    assert pauses == [1, 1.5, 2.25, 3.375, 4, 4, 4, 4]


def test_wait_gives_up_at_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "gateway_client_for", lambda credentials: FakeGateway(["Running"] * 100))
    with pytest.raises(TimeoutError, match="did not finish within 0.2 s"):
        api.wait("some-id", timeout_s=0.2, first_poll_s=0.05)


def test_inputs_as_mapping_files_or_directory(tmp_path: Path) -> None:
    with api._input_directory({"a.txt": "text", "b.bin": b"\x00\x01"}) as directory:
        assert (directory / "a.txt").read_text() == "text"
        assert (directory / "b.bin").read_bytes() == b"\x00\x01"
    assert not directory.exists()  # the scratch copy is gone
    (tmp_path / "x.xyz").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "y").write_text("y")
    with api._input_directory([tmp_path / "x.xyz", tmp_path / "sub"]) as directory:
        assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")) == [
            "sub",
            "sub/y",
            "x.xyz",
        ]
    with api._input_directory(str(tmp_path)) as directory:
        assert directory == tmp_path


@pytest.mark.parametrize(
    "inputs", [{"../escape": "x"}, {"a/b": "x"}, {"": "x"}, ["one/same.txt", "two/same.txt"], "/no/such/dir"]
)
def test_bad_inputs_are_refused(inputs: Any, tmp_path: Path) -> None:
    if isinstance(inputs, list):
        for name in inputs:
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_text("x")
        inputs = [tmp_path / name for name in inputs]
    with pytest.raises(SubmissionError), api._input_directory(inputs):
        pass


def test_package_import_stays_light_until_a_name_is_used() -> None:
    code = (
        "import sys, leruli_prefect as l\n"
        "assert not {'prefect', 'boto3', 'httpx'} & set(sys.modules), 'heavy import at package import'\n"
        "l.submit\n"
        "assert 'prefect' not in sys.modules, 'the plain API imported Prefect'\n"
        "assert l.run_job.name == 'leruli-run-job' and l.LeruliCredentials.get_block_type_slug()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

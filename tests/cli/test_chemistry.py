"""Real quantum chemistry through the queue: psi4 and xtb jobs from `leruli submit` to `leruli get`.

Each energy is checked against the same image run directly with docker-py on the same input, so the test
shows that the queue changes nothing about a calculation (inputs, environment, outputs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from leruli_prefect.worker.container_runner import thread_environment
from tests import stack
from tests.stack import REPO, cli

PSI4_IMAGE = "psi4:1.3.2"
XTB_IMAGE = "xtb:6.5.1"

# Water at O-H 0.96 A and H-O-H 104.5 degrees, RHF/STO-3G with exact (pk) integrals.
PSI4_INPUT = """\
molecule water {
O
H 1 0.96
H 1 0.96 2 104.5
}

set basis sto-3g
set scf_type pk

energy('scf')
"""
# psi4 1.3.2's energy for PSI4_INPUT (Eh), as printed by our first runs of the image; a guard against both
# runs going wrong the same way.
PSI4_KNOWN_ENERGY = -74.9633190526

# The same water geometry in Cartesian coordinates (A).
WATER_XYZ = """\
3
water
O   0.000000   0.000000   0.117790
H   0.000000   0.755453  -0.471161
H   0.000000  -0.755453  -0.471161
"""
XTB_KNOWN_ENERGY = -5.070325128562

pytestmark = pytest.mark.usefixtures("alpha_node", "chemistry_images")


@pytest.fixture(scope="module")
def chemistry_images(docker_ready: None) -> None:
    """Build psi4:1.3.2 and xtb:6.5.1 offline (a no-op when they exist; about 75 s from nothing)."""
    build = subprocess.run(
        [REPO / "scripts" / "build-chem-images.sh"], capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stderr


@pytest.fixture(scope="module")
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.DockerClient(base_url="unix:///var/run/docker.sock")


def run_directly(engine: docker.DockerClient, image: str, directory: Path, command: list[str]) -> str:
    """Run `command` in `image` on `directory` as a one-core job would, without the queue; return stdout."""
    stdout = engine.containers.run(
        image,
        command,
        working_dir="/rundir",
        volumes={str(directory): {"bind": "/rundir", "mode": "rw"}},
        environment=thread_environment(1),
        network_mode="none",
        remove=True,
        stdout=True,
        stderr=False,
    )
    return stdout.decode()


def submit_and_fetch(
    server: stack.Server,
    group: dict[str, str],
    env: dict[str, str],
    job_dir: Path,
    fetched: Path,
    *arguments: str,
) -> None:
    """`leruli submit ARGUMENTS` in job_dir, wait for the job to complete, `leruli get` into fetched."""
    submitted = cli("submit", *arguments, cwd=job_dir, env=env)
    assert submitted.returncode == 0, submitted.stderr
    job = stack.wait_for_final_state(server, group, submitted.stdout.strip())
    assert job["state"] == "Completed", job
    fetched.mkdir()
    bucket = (job_dir / "leruli.bucket").read_text().strip()
    got = cli("get", bucket, cwd=fetched, env=env)
    assert got.returncode == 0, got.stderr


def psi4_energy(output: str) -> float:
    match = re.search(r"@RHF Final Energy:\s+(-?\d+\.\d+)", output)
    assert match, output[-2000:]
    return float(match.group(1))


def xtb_energy(stdout: str) -> float:
    match = re.search(r"\|\s*TOTAL ENERGY\s+(-?\d+\.\d+) Eh", stdout)
    assert match, stdout[-2000:]
    return float(match.group(1))


def test_psi4_water_energy_through_the_queue_equals_a_direct_run(
    server: stack.Server,
    alpha: dict[str, str],
    alpha_user_env: dict[str, str],
    engine: docker.DockerClient,
    job_dir: Path,
    tmp_path: Path,
) -> None:
    (job_dir / "input.dat").write_text(PSI4_INPUT)
    direct = tmp_path / "direct"
    direct.mkdir()
    shutil.copy(job_dir / "input.dat", direct)
    run_directly(engine, PSI4_IMAGE, direct, ["psi4", "-n", "1", "input.dat", "output.dat"])
    expected = psi4_energy((direct / "output.dat").read_text())

    fetched = tmp_path / "fetched"
    # psi4 asks for 500 MiB by default; the container gets room to spare.
    arguments = ["--memory", "2000", "psi4", "1.3.2", "psi4", "-n", "1", "input.dat", "output.dat"]
    submit_and_fetch(server, alpha, alpha_user_env, job_dir, fetched, *arguments)

    output = (fetched / "output.dat").read_text()
    assert "Psi4 exiting successfully" in output
    assert psi4_energy(output) == pytest.approx(expected, abs=1e-8)
    assert expected == pytest.approx(PSI4_KNOWN_ENERGY, abs=1e-8)


def test_xtb_water_energy_through_the_queue_equals_a_direct_run(
    server: stack.Server,
    alpha: dict[str, str],
    alpha_user_env: dict[str, str],
    engine: docker.DockerClient,
    job_dir: Path,
    tmp_path: Path,
) -> None:
    (job_dir / "water.xyz").write_text(WATER_XYZ)
    direct = tmp_path / "direct"
    direct.mkdir()
    shutil.copy(job_dir / "water.xyz", direct)
    expected = xtb_energy(run_directly(engine, XTB_IMAGE, direct, ["xtb", "water.xyz", "--gfn", "2", "--sp"]))

    fetched = tmp_path / "fetched"
    arguments = ["--memory", "1000", "xtb", "6.5.1", "xtb", "water.xyz", "--gfn", "2", "--sp"]
    submit_and_fetch(server, alpha, alpha_user_env, job_dir, fetched, *arguments)

    assert "normal termination of xtb" in (fetched / "joberr.txt").read_text()
    assert xtb_energy((fetched / "joblog.txt").read_text()) == pytest.approx(expected, abs=1e-8)
    assert expected == pytest.approx(XTB_KNOWN_ENERGY, abs=1e-8)

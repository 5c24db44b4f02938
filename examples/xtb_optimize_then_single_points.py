"""Optimize several molecules with xtb, then run single points on the optimized geometries, as one Prefect flow.

Every xtb run is a Leruli job on your group's nodes. The flow fans out a single point on each starting
geometry and an optimization of each molecule at once; as each optimization ends, the single point on its
optimized geometry (`xtbopt.xyz`) is submitted. It returns, per molecule, the three GFN2-xTB energies (Eh).

Against the demo stack (`make demo`), from the repository root:

    export LERULI_BASEURL=http://127.0.0.1:4300
    export LERULI_API_SECRET=$(.venv/bin/python -c "import json; print(json.load(open('.stack/demo-group.json'))['api_secret'])")
    export LERULI_GROUP_TOKEN=$(.venv/bin/python -c "import json; print(json.load(open('.stack/demo-group.json'))['group_token'])")
    source .stack/s3.env
    .venv/bin/python examples/xtb_optimize_then_single_points.py --out xtb-results

Instead of the environment, saved blocks may be named: `--credentials NAME --storage NAME` (see
`leruli_prefect.blocks`). The flow's own runs are recorded by whatever Prefect API your environment points at
(`PREFECT_API_URL`; without one Prefect starts a temporary local server).
"""  # noqa: E501

from __future__ import annotations

import argparse
import re
from pathlib import Path

from prefect import flow
from prefect.futures import as_completed
from pydantic import BaseModel

from leruli_prefect import JobResult, run_job

XTB = ("xtb", "6.5.1")
XTB_MEMORY_MB = 1000

# Starting geometries (A), deliberately a little off their minima so that the optimization has work to do.
MOLECULES = {
    "water": """\
3
water, stretched
O   0.000000   0.000000   0.120000
H   0.000000   0.800000  -0.480000
H   0.000000  -0.800000  -0.480000
""",
    "ammonia": """\
4
ammonia, flattened
N   0.000000   0.000000   0.080000
H   0.000000   0.980000  -0.190000
H   0.848705  -0.490000  -0.190000
H  -0.848705  -0.490000  -0.190000
""",
    "methane": """\
5
methane, one C-H bond stretched
C   0.000000   0.000000   0.000000
H   0.700000   0.700000   0.700000
H  -0.629000  -0.629000   0.629000
H  -0.629000   0.629000  -0.629000
H   0.629000  -0.629000  -0.629000
""",
}


class MoleculeEnergies(BaseModel):
    """GFN2-xTB total energies of one molecule (Eh)."""

    start: float
    optimized: float
    single_point: float


def total_energy(result: JobResult) -> float:
    """The last `TOTAL ENERGY` xtb printed (for --opt, that of the final geometry)."""
    energies = re.findall(r"\|\s*TOTAL ENERGY\s+(-?\d+\.\d+) Eh", result.read_text("joblog.txt"))
    if not energies:
        raise ValueError(f"no TOTAL ENERGY in {result.path('joblog.txt')}")
    return float(energies[-1])


@flow(name="xtb-optimize-then-single-points", log_prints=True)
def optimize_then_single_points(
    molecules: dict[str, str],
    work_dir: Path,
    credentials: str | None = None,
    storage: str | None = None,
) -> dict[str, MoleculeEnergies]:
    """Optimize each molecule, then run a single point on its optimized geometry; return the energies."""
    options = {
        "memory_mb": XTB_MEMORY_MB,
        "time_limit_s": 600,
        "credentials": credentials,
        "storage": storage,
    }
    starts = {
        name: run_job.submit({"mol.xyz": xyz}, *XTB, "xtb mol.xyz --sp", work_dir / name / "start", **options)
        for name, xyz in molecules.items()
    }
    optimizations = {
        name: run_job.submit({"mol.xyz": xyz}, *XTB, "xtb mol.xyz --opt", work_dir / name / "opt", **options)
        for name, xyz in molecules.items()
    }
    name_of = {future.task_run_id: name for name, future in optimizations.items()}
    # Each single point goes out as soon as its optimization is done, not after the slowest one.
    singles = {}
    optimized = {}
    for future in as_completed(list(optimizations.values())):
        name = name_of[future.task_run_id]
        result = future.result()
        optimized[name] = total_energy(result)
        geometry = {"opt.xyz": result.read_text("xtbopt.xyz")}
        singles[name] = run_job.submit(geometry, *XTB, "xtb opt.xyz --sp", work_dir / name / "sp", **options)
    energies = {
        name: MoleculeEnergies(
            start=total_energy(starts[name].result()),
            optimized=optimized[name],
            single_point=total_energy(singles[name].result()),
        )
        for name in molecules
    }
    for name, energy in energies.items():
        print(
            f"{name:<10} start {energy.start:.8f}  optimized {energy.optimized:.8f}"
            f"  single point {energy.single_point:.8f} Eh"
        )
    return energies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("xtb-results"), help="Where job files are written")
    parser.add_argument("--credentials", help="Name of a saved LeruliCredentials block (default: LERULI_*)")
    parser.add_argument("--storage", help="Name of a saved LeruliS3Storage block (default: LERULI_S3_*)")
    arguments = parser.parse_args()
    optimize_then_single_points(MOLECULES, arguments.out, arguments.credentials, arguments.storage)


if __name__ == "__main__":
    main()

"""The example flow `examples/xtb_optimize_then_single_points.py`, end to end through server, node and S3."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.stack import REPO

pytestmark = pytest.mark.usefixtures("alpha_node", "chemistry_images", "researcher")


def load_example() -> ModuleType:
    path = REPO / "examples" / "xtb_optimize_then_single_points.py"
    spec = importlib.util.spec_from_file_location("xtb_optimize_then_single_points", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_optimizes_then_runs_single_points(tmp_path: Path) -> None:
    example = load_example()

    energies = example.optimize_then_single_points(example.MOLECULES, tmp_path / "results")

    assert set(energies) == set(example.MOLECULES)
    # GFN2-xTB total energies (Eh) of these molecules lie near these values; an error would show far away.
    near = {"water": -5.07, "ammonia": -4.43, "methane": -4.17}
    for name, energy in energies.items():
        assert energy.start == pytest.approx(near[name], abs=0.05), (name, energy)
        assert energy.optimized <= energy.start, (name, energy)
        assert energy.start - energy.optimized > 1e-4, (name, energy)  # the geometries were off on purpose
        # The single point on the optimized geometry reproduces the optimization's final energy.
        assert energy.single_point == pytest.approx(energy.optimized, abs=1e-5), (name, energy)
        assert (tmp_path / "results" / name / "opt" / "xtbopt.xyz").is_file()
        assert "normal termination of xtb" in (tmp_path / "results" / name / "sp" / "joberr.txt").read_text()

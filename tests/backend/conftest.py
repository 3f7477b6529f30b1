"""Fixtures shared by the backend tests: synthetic LEVIR-CC-layout data made at test time.

The tiny exported model and the georeferenced scene are in tests/conftest.py (the plugin tests use them too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hisem.cli import main as hisem_main

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_synth(out: Path, pairs: int, seed: int, size: int = 64, splits: str = "0.8,0.1,0.1") -> Path:
    """Run the real `hisem synth` into ``out``."""
    code = hisem_main([
        "synth", "--out", str(out), "--pairs", str(pairs), "--seed", str(seed), "--size", str(size),
        "--split-fractions", splits, "--workers", "2", "--no-progress",
    ])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 synthetic 64-px pairs (96 train / 12 val / 12 test)."""
    return make_synth(tmp_path_factory.mktemp("synth-small"), pairs=120, seed=11)

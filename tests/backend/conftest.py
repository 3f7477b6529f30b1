"""Fixtures shared by the backend tests, made at test time: synthetic LEVIR-CC-layout data, a tiny
exported model and a small georeferenced scene."""

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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth 200 pairs at 64 px -> train the tiny preset 2 epochs -> ONNX export; 64 px tiles."""
    from hisem.training.trainer import TrainOptions, train

    root = tmp_path_factory.mktemp("model")
    data, run, model = root / "data", root / "run", root / "tiny-model"
    assert hisem_main(["synth", "--out", str(data), "--pairs", "200", "--seed", "1", "--size", "64",
                       "--workers", "1", "--no-progress"]) == 0
    train(TrainOptions(data=str(data), out=str(run), preset="tiny", epochs=2, batch_size=32))
    assert hisem_main(["export", "--model", str(run), "-o", str(model)]) == 0
    return model


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 m at 0.5 m (512 px) in EPSG:32633."""
    out = tmp_path_factory.mktemp("scene")
    assert hisem_main(["synth", "--scene", str(out), "--size-m", "256", "--gsd", "0.5", "--seed", "3"]) == 0
    return out

"""Fixtures of both suites (backend and plugin), made at test time: a tiny exported HiSem model and a
small georeferenced synthetic scene. Helpers to run the real `hisem serve` are in service_support.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hisem.cli import main as hisem_main


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


@pytest.fixture(scope="session")
def model_id(tiny_model: Path) -> str:
    return json.loads((tiny_model / "model.json").read_text())["model_id"]

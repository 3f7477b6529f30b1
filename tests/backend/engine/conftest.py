"""A tiny HiSem trained on synthetic pairs and exported through `hisem export`, once per session.

Training for real (not random weights) matters for the int8 test: a random decoder's next-token
distribution is nearly flat, so int8 rounding flips its argmax all the time and agreement would
measure nothing. Synthesis, training and export take ~1 min on 2 cores; every engine test shares it.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_support import TrainedModel, load_tiles

from hisem.cli import main as hisem_main
from hisem.data.readers import PairRecord, read_dataset


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    from hisem.training.trainer import TrainOptions, train

    root = tmp_path_factory.mktemp("engine")
    data, run, model_dir = root / "synth", root / "run", root / "models" / "tiny-synthetic-test"
    assert hisem_main(["synth", "--out", str(data), "--pairs", "300", "--seed", "3", "--size", "64",
                       "--no-progress"]) == 0
    # val_limit: best.pt is chosen on 10 validation pairs; METEOR's per-sentence cost on all 30 would
    # add ~20 s to the session for no benefit to these tests.
    train(TrainOptions(data=str(data), out=str(run), preset="tiny", epochs=4, batch_size=32, lr=1e-3,
                       val_limit=10))
    # `hisem export` end to end: this fixture is the CLI test's export as well.
    assert hisem_main(["export", "--model", str(run), "-o", str(model_dir), "--quantize", "int8"]) == 0
    return TrainedModel(data, run, model_dir)


@pytest.fixture(scope="session")
def held_out(trained: TrainedModel) -> tuple[list[PairRecord], np.ndarray, np.ndarray]:
    """The 60 val + test pairs (never trained on) as records and uint8 tiles."""
    records = read_dataset(trained.data, split="val") + read_dataset(trained.data, split="test")
    before, after = load_tiles(records)
    return records, before, after


@pytest.fixture(scope="session")
def ort_fp32(trained: TrainedModel):
    from hisem.engine import OrtRunner

    return OrtRunner(trained.model_dir)


@pytest.fixture(scope="session")
def ort_int8(trained: TrainedModel):
    from hisem.engine import OrtRunner

    return OrtRunner(trained.model_dir, precision="int8")


@pytest.fixture(scope="session")
def torch_runner(trained: TrainedModel):
    from hisem.engine.torch_runner import TorchRunner

    return TorchRunner(trained.run)

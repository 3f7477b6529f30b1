"""Fixtures of the training tests: the 40-pair synthetic set of the issue, and a tiny model exported from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hisem.cli import main as hisem_main


@pytest.fixture(scope="session")
def synth40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`hisem synth --pairs 40 --size 64`: 32 train / 4 val / 4 test pairs."""
    out = tmp_path_factory.mktemp("synth40") / "pairs40"
    assert hisem_main(["synth", "--out", str(out), "--pairs", "40", "--size", "64", "--seed", "7",
                       "--workers", "1", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def parent_model(synth40: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained 1 epoch on synth40 (words seen 40 times only) and exported: a model folder."""
    root = tmp_path_factory.mktemp("parent")
    run, folder = root / "run", root / "tiny-parent"
    assert hisem_main(["train", "--data", str(synth40), "--out", str(run), "--epochs", "1", "--batch-size", "16",
                       "--lr", "1e-3", "--min-word-count", "40", "--device", "cpu"]) == 0
    assert hisem_main(["export", "--model", str(run), "-o", str(folder), "--id", "tiny-parent"]) == 0
    return folder

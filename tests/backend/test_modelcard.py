"""`hisem card` measures a real (tiny, briefly trained) model on synthetic and real data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hisem.cli import main as hisem_main
from hisem.training.trainer import Trainer, TrainOptions
from tests.backend.conftest import SHARED_DATA


@pytest.mark.slow
def test_card_reports_synthetic_and_real_scores(synth_small: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(TrainOptions(data=str(synth_small), out=str(run), preset="tiny", epochs=1, lr=1e-3, max_steps=3)).fit()
    out = tmp_path / "card"
    assert hisem_main(["card", "--model", str(run), "--id", "hisem-tiny-synthetic-test", "--heldout",
                       str(synth_small), "--real-data", str(SHARED_DATA), "-o", str(out)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert card.startswith("# hisem-tiny-synthetic-test")
    assert "Trained on synthetic scenes only" in card
    assert "<!-- real-imagery:start -->" in card and "make eval-real MODEL=hisem-tiny-synthetic-test" in card
    for name in ("train_000016.png", "train_000051.png", "train_000054.png"):
        assert f"| {name} |" in card
    extra = torch.load(run / "release.pt", map_location="cpu", weights_only=True)["extra"]
    assert 0.0 <= extra["held_out_metrics"]["heldout_synthetic_flag_accuracy"] <= 1.0
    assert extra["training_data"]["real_imagery"] is False
    assert extra["training_data"]["pairs_by_source"] == {"synthetic": 96}


def test_real_section_is_replaced_in_place() -> None:
    from hisem.modelcard import REAL_END, REAL_START, fill_real_section

    card = f"# m\n\n## Real imagery\n{REAL_START}\n(not measured)\n{REAL_END}\n\n## Limits\n"
    filled = fill_real_section(card, "| set | F1 |\n|---|---|\n| dsifn | 0.5 |\n")
    table = "| set | F1 |\n|---|---|\n| dsifn | 0.5 |"
    assert filled == f"# m\n\n## Real imagery\n{REAL_START}\n{table}\n{REAL_END}\n\n## Limits\n"
    assert fill_real_section(filled, "x") == f"# m\n\n## Real imagery\n{REAL_START}\nx\n{REAL_END}\n\n## Limits\n"
    assert fill_real_section("no markers", "x") == "no markers"


def test_card_needs_the_real_data(tmp_path: Path) -> None:
    assert hisem_main(["card", "--model", str(tmp_path), "--id", "x", "--heldout", str(tmp_path),
                       "--real-data", str(tmp_path / "absent"), "-o", str(tmp_path / "card")]) == 2

"""`hisem calibrate`: thresholds chosen on validation pairs, folded into the graphs as logit offsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_support import TrainedModel, load_tiles

from hisem.cli import main as hisem_main
from hisem.data.readers import read_dataset
from hisem.evaluation.calibrate import BINS, _best_flag, _best_mask, measure


def test_best_flag_threshold_on_hand_made_probabilities() -> None:
    prob = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.7])
    flag = np.array([0, 0, 1, 1, 1, 1])  # 0.5 misses two changed pairs; any t in (0.2, 0.3] is perfect
    t, acc, at_half = _best_flag(prob, flag)
    assert 0.2 < t <= 0.3 and acc == 1.0 and at_half == pytest.approx(4 / 6)
    # Unknown flags (-1) do not count.
    assert _best_flag(np.append(prob, 0.9), np.append(flag, -1))[1] == 1.0


def test_flag_threshold_stays_near_one_half_when_accuracy_is_flat() -> None:
    """Best accuracy only for t in (0.01, 0.03] (one pair more), 0.5 within a standard error: 0.5 it is."""
    prob = np.array([*([0.01] * 90), *([0.95] * 10), 0.03, *([0.9] * 99)])
    flag = np.array([0] * 100 + [1] * 100)
    t, acc, at_half = _best_flag(prob, flag)
    assert at_half == pytest.approx(189 / 200) and t == pytest.approx(0.5) and acc == at_half
    # Without the noise the extra pair is a real gain: the threshold moves (as little as it can).
    clean = np.array([*([0.01] * 100), 0.03, *([0.9] * 99)])
    t, acc, _ = _best_flag(clean, flag)
    assert t == pytest.approx(0.03) and acc == 1.0


def test_best_mask_threshold_on_hand_made_histograms() -> None:
    pos, neg = np.zeros(BINS, np.int64), np.zeros(BINS, np.int64)
    pos[300], pos[800] = 10, 10  # changed pixels at P = 0.3 and 0.8
    neg[100], neg[600] = 100, 5  # unchanged pixels at 0.1 and 0.6
    t, f1, at_half = _best_mask(pos, neg)
    # t in (0.1, 0.3]: TP 20, FP 5 -> F1 = 40 / 45; at 0.5: TP 10, FP 5, FN 10 -> 20 / 35.
    assert 0.1 < t <= 0.3 and f1 == pytest.approx(40 / 45) and at_half == pytest.approx(20 / 35)


def test_calibrated_checkpoint_moves_the_operating_point_to_one_half(trained: TrainedModel, tmp_path: Path) -> None:
    from hisem.engine.torch_runner import TorchRunner

    out = tmp_path / "calibrated.pt"
    assert hisem_main(["calibrate", "--model", str(trained.run), "--data", str(trained.data), "-o", str(out)]) == 0
    point = measure(trained.run / "best.pt", trained.data)
    assert point.flag_accuracy >= point.flag_accuracy_at_half and point.mask_f1 >= point.mask_f1_at_half
    records = read_dataset(trained.data, split="val")
    before, after = load_tiles(records)
    _, raw, raw_mask = TorchRunner(trained.run / "best.pt").encode(before, after)
    _, cal, cal_mask = TorchRunner(out).encode(before, after)
    assert np.array_equal(cal >= 0.5, raw >= point.flag_threshold)
    near = np.abs(raw_mask - point.mask_threshold) < 1e-4  # float rounding right at the threshold
    assert np.array_equal((cal_mask >= 0.5)[~near], (raw_mask >= point.mask_threshold)[~near])
    # Calibrating twice would compound the offsets: refused.
    assert hisem_main(["calibrate", "--model", str(out), "--data", str(trained.data), "-o",
                       str(tmp_path / "twice.pt")]) == 2


@pytest.mark.parametrize("bias", [-50.0, 50.0])
def test_the_router_chooses_its_path_at_the_calibrated_point(trained: TrainedModel, bias: float) -> None:
    """A tile flagged changed at the operating point is captioned by the changed path, and vice versa."""
    from dataclasses import replace

    import torch

    from hisem.model import build_model, load_checkpoint

    model, _, _ = load_checkpoint(trained.run / "best.pt")
    shifted = build_model(replace(model.cfg, flag_bias=bias))
    shifted.load_state_dict(model.state_dict())
    shifted.eval()
    fb, fa = torch.randn(3, model.cfg.tokens, model.cfg.dim), torch.randn(3, model.cfg.tokens, model.cfg.dim)
    with torch.no_grad():
        chosen = shifted.hasd(fb, fa).memory
        forced = shifted.hasd(fb, fa, route=torch.full((3,), int(bias > 0))).memory
    assert torch.equal(chosen, forced)

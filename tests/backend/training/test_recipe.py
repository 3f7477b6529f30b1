"""The recipe where real models are made: epoch order, exact resume, --max-steps, AMP, --select, ablations."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hisem.cli import main as hisem_main
from hisem.model import load_checkpoint
from hisem.model.config import PRESETS
from hisem.training.schedule import learning_rate, router_weight
from hisem.training.trainer import Trainer, TrainOptions, _defaults, amp_dtype
from tests.backend.autocast_rules import cuda_layer_norm_rule


def _opts(data: Path, out: Path, **kw: object) -> TrainOptions:
    base: dict = dict(data=str(data), out=str(out), preset="tiny", epochs=4, batch_size=8, lr=1e-3, seed=3)
    base.update(kw)
    return TrainOptions(**base)


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def _draws(trainer: Trainer, epoch: int, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, tuple[int, ...]]]:
    """(pair index, reference tokens) of every pair the training step saw in ``epoch``, in order."""
    seen: list[tuple[int, tuple[int, ...]]] = []
    original = trainer.step.forward

    def spy(batch, route=None):
        seen.extend(zip(batch["index"].tolist(), map(tuple, batch["tokens"].tolist()), strict=True))
        return original(batch, route)

    with monkeypatch.context() as patch:  # undone after the epoch: each call spies on one epoch only
        patch.setattr(trainer.step, "forward", spy)
        trainer.train_epoch(epoch)
    return seen


def test_each_epoch_has_its_own_order(synth40: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(_opts(synth40, tmp_path / "run"))
    first, second = (_draws(trainer, epoch, monkeypatch) for epoch in (0, 1))
    assert sorted(i for i, _ in first) == sorted(i for i, _ in second) == list(range(32))
    assert [i for i, _ in first] != [i for i, _ in second]


def test_each_epoch_draws_its_own_references_in_workers(
    synth40: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers the reference per pair comes from each worker's seed, which must change per epoch."""
    trainer = Trainer(_opts(synth40, tmp_path / "run", workers=2))
    first, second = (dict(_draws(trainer, epoch, monkeypatch)) for epoch in (0, 1))
    changed = [i for i, r in enumerate(trainer.train_records) if r.changeflag == 1]
    assert len(changed) >= 8
    assert any(first[i] != second[i] for i in changed)


@pytest.fixture
def dropout_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny preset with decoder dropout: training then draws from torch's RNG at every step."""
    tiny = PRESETS["tiny"]
    monkeypatch.setitem(PRESETS, "tiny", replace(tiny, decoder=replace(tiny.decoder, dropout=0.1)))


@pytest.mark.slow
@pytest.mark.usefixtures("dropout_tiny")
@pytest.mark.parametrize("stop_after", [8, 6])  # 2 of 4 epochs (4 steps each), or in the middle of the second
def test_half_a_run_plus_resume_equals_the_whole_run(synth40: Path, tmp_path: Path, stop_after: int) -> None:
    once, twice = tmp_path / "once", tmp_path / "twice"
    Trainer(_opts(synth40, once)).fit()
    Trainer(_opts(synth40, twice, max_steps=stop_after)).fit()
    saved = load_checkpoint(twice / "last.pt")[2]
    assert saved["step"] == stop_after and saved["epoch"] == 1
    assert saved["epoch_complete"] is (stop_after == 8) and saved["epoch_step"] == stop_after - 4
    for key in ("optimizer", "rng", "options"):
        assert saved[key], key
    # refused: a different schedule would not continue the same training
    with pytest.raises(ValueError, match="--epochs 4, this command asks for --epochs 5"):
        Trainer(_opts(synth40, twice, epochs=5, resume=True))
    # the command line: options left out are the run's own
    assert hisem_main(["train", "--data", str(synth40), "--out", str(twice), "--resume", "--device", "cpu"]) == 0
    a = load_checkpoint(once / "last.pt")[0].state_dict()
    b = load_checkpoint(twice / "last.pt")[0].state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6, rtol=0), key
    assert [h["epoch"] for h in _history(once)] == [1, 2, 3, 4]
    assert sum(h["steps"] for h in _history(twice)) == 16


def test_max_steps_caps_the_run_and_epochs_shape_the_schedules(synth40: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = Trainer(_opts(synth40, run, epochs=3, max_steps=5, lr_schedule="cosine")).fit()
    history = _history(run)
    assert result.steps == 5 and [h["steps"] for h in history] == [4, 1]
    assert [h["router_weight"] for h in history] == [router_weight(0, 3), router_weight(1, 3)]
    # cosine over 3 epochs x 4 steps: step 4 is a third of the way, not the end of a 5-step run
    assert history[1]["lr"] == pytest.approx(learning_rate(4, 12, 1e-3, "cosine"))
    assert history[1]["lr"] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 3)))
    assert load_checkpoint(run / "last.pt")[2]["epoch_complete"] is False


def test_amp_modes() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert amp_dtype("auto", cpu) is None and amp_dtype("off", cuda) is None
    assert amp_dtype("auto", cuda) == amp_dtype("fp16", cpu) == torch.float16
    assert amp_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="--amp"):
        amp_dtype("fp8", cpu)


def test_bf16_training_on_cpu_through_the_command_line(
    synth40: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    seen: list[torch.dtype | None] = []
    original = Trainer.train_epoch

    def spy(self: Trainer, epoch: int, skip_batches: int = 0) -> dict[str, float]:
        seen.append(self.amp_dtype)
        assert not self.scaler.is_enabled()  # bf16 needs no loss scaling
        return original(self, epoch, skip_batches)

    monkeypatch.setattr(Trainer, "train_epoch", spy)
    with cuda_layer_norm_rule(monkeypatch):  # the dtypes a CUDA run meets
        assert hisem_main(["train", "--amp", "bf16", "--preset", "tiny", "--data", str(synth40), "--out", str(run),
                           "--epochs", "2", "--batch-size", "8", "--max-steps", "3", "--device", "cpu"]) == 0
    assert seen == [torch.bfloat16]
    assert all(math.isfinite(h["train_loss"]) for h in _history(run))
    model = load_checkpoint(run / "last.pt")[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_select_defaults_to_bleu4_for_the_paper_preset() -> None:
    chosen = {name: _defaults(TrainOptions(data="d", out="o", preset=name), None).select for name in PRESETS}
    assert chosen == {"tiny": "sm", "lite": "sm", "paper": "bleu4"}
    with pytest.raises(ValueError, match="--select"):
        _defaults(TrainOptions(data="d", out="o", select="cider"), None)


def test_ablation_switches_and_selection_on_the_command_line(synth40: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert hisem_main(["train", "--data", str(synth40), "--out", str(run), "--no-bdam", "--no-hasd",
                       "--select", "bleu4", "--epochs", "2", "--batch-size", "16", "--device", "cpu"]) == 0
    model, _, extra = load_checkpoint(run / "best.pt")
    assert not model.cfg.bdam.enabled and not model.cfg.hasd.enabled
    assert model.bdam is None and model.hasd is None
    assert extra["selection"]["metric"] == "bleu4" and extra["selection"]["key"] == "val_BLEU-4"
    history = _history(run)
    best = max(history, key=lambda h: h["val_BLEU-4"])  # the first of equals, as best.pt keeps it
    assert extra["epoch"] + 1 == best["epoch"]
    assert all(h["router_weight"] == 0.0 for h in history)  # no router to train without HASD

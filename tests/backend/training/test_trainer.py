"""`hisem train` end to end on tiny synthetic data: the recipe, checkpoints, resume, feature cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hisem.cli import main as hisem_main
from hisem.data.dataset import ChangeCaptionDataset
from hisem.data.readers import read_dataset
from hisem.data.vocab import Vocab
from hisem.model import build_model, load_checkpoint
from hisem.model.config import preset
from hisem.training.batches import CachedPairsDataset, TrainStep
from hisem.training.feature_cache import build_feature_cache
from hisem.training.schedule import teacher_forced
from hisem.training.trainer import Trainer, TrainOptions


def _opts(data: Path, out: Path, **kw: object) -> TrainOptions:
    base = dict(data=str(data), out=str(out), preset="tiny", epochs=2, batch_size=32, lr=1e-3, seed=0)
    base.update(kw)
    return TrainOptions(**base)


def test_cli_train_writes_run_and_checkpoints_rebuild(synth_small: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = hisem_main([
        "train", "--data", str(synth_small), "--preset", "tiny", "--out", str(run),
        "--epochs", "2", "--batch-size", "32", "--lr", "1e-3", "--device", "cpu",
    ])
    assert code == 0
    for name in ("options.json", "vocab.json", "last.pt", "best.pt", "history.jsonl"):
        assert (run / name).exists(), name
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert all("val_S*m" in h and h["train_loss"] > 0 for h in history)
    # the checkpoint alone rebuilds the model, with the vocabulary built from the train split
    model, vocab, extra = load_checkpoint(run / "best.pt")
    assert model.cfg.vocab_size == len(vocab) == len(Vocab.load(run / "vocab.json"))
    assert extra["epoch"] in (0, 1)


def test_router_follows_teacher_forcing_schedule(synth_small: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    epochs = 5  # forced for round(5 * 41/50) = 4 epochs, then the router decides
    trainer = Trainer(_opts(synth_small, tmp_path / "run", epochs=epochs, batch_size=48))
    seen: list[tuple[int, torch.Tensor | None, torch.Tensor]] = []
    original = trainer.step.forward
    epoch_box = [0]

    def spy(batch, route=None):
        seen.append((epoch_box[0], route, batch["changeflag"].clone()))
        return original(batch, route)

    monkeypatch.setattr(trainer.step, "forward", spy)
    for epoch in range(epochs):
        epoch_box[0] = epoch
        trainer.train_epoch(epoch)
    assert {e for e, _, _ in seen} == set(range(epochs))
    for epoch, route, flags in seen:
        if teacher_forced(epoch, epochs):
            assert route is not None and torch.equal(route, flags)
        else:
            assert route is None


def test_resume_continues_where_it_stopped(synth_small: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    Trainer(_opts(synth_small, run, epochs=2, max_steps=3)).fit()  # 3 steps = the first epoch (96 / 32)
    first = load_checkpoint(run / "last.pt")[2]
    assert (first["epoch"], first["step"], first["epoch_complete"]) == (0, 3, True)
    resumed = Trainer(_opts(synth_small, run, epochs=2, resume=True))
    assert resumed.start_epoch == 1
    assert resumed.optimizer.state_dict()["state"], "optimiser state restored"
    resumed.fit()
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert load_checkpoint(run / "last.pt")[2]["epoch"] == 1


def test_cached_features_give_the_same_step_as_images(synth_small: Path, tmp_path: Path) -> None:
    records = read_dataset(synth_small, split="train")[:8]
    vocab = Vocab.build(records, min_count=1)
    cfg = preset("tiny", vocab_size=len(vocab))
    cfg = type(cfg)(**{**cfg.__dict__, "encoder": type(cfg.encoder)(**{**cfg.encoder.__dict__, "freeze": True})})
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    enc = cfg.encoder
    images = ChangeCaptionDataset(records, vocab, enc.image_size, enc.mean, enc.std, train=False)
    cache = build_feature_cache(model, images, [r.name for r in records], tmp_path / "cache", batch_size=4)
    cached = CachedPairsDataset(images, cache)
    step = TrainStep(model)
    collate = torch.utils.data.default_collate
    with torch.no_grad():
        a = step(collate([images[i] for i in range(8)]))
        b = step(collate([cached[i] for i in range(8)]))
    # float16 storage of the features is the only difference
    assert torch.allclose(a.logits, b.logits, atol=2e-2)
    assert torch.allclose(a.router_logits, b.router_logits, atol=2e-2)
    # a second build reuses the complete cache instead of recomputing it
    mtime = (tmp_path / "cache" / "coarse.npy").stat().st_mtime_ns
    build_feature_cache(model, images, [r.name for r in records], tmp_path / "cache", batch_size=4)
    assert (tmp_path / "cache" / "coarse.npy").stat().st_mtime_ns == mtime


def test_cache_is_used_for_frozen_presets_on_cpu(synth_small: Path, tmp_path: Path) -> None:
    trainer = Trainer(_opts(synth_small, tmp_path / "run", cache_features="yes", epochs=1, max_steps=1))
    assert isinstance(trainer.train_set, CachedPairsDataset)
    assert trainer.model.cfg.encoder.freeze
    assert not any(p.requires_grad for p in trainer.model.backbone.parameters())
    trainer.fit()
    assert (tmp_path / "run" / "feature-cache" / "train" / "meta.json").exists()


def test_missing_data_or_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere: no such file"):
        Trainer(_opts(tmp_path / "nowhere", tmp_path / "run"))
    # every pair in train: no validation split to select the best checkpoint on
    from tests.backend.conftest import make_synth

    data = make_synth(tmp_path / "train-only", pairs=6, seed=1, splits="1,0,0")
    with pytest.raises(ValueError, match="no entries in split 'val'"):
        Trainer(_opts(data, tmp_path / "run"))


def test_backbone_on_onnx_runtime_matches_pytorch(tmp_path: Path) -> None:
    from hisem.training.feature_cache import OrtBackbone

    cfg = preset("tiny", vocab_size=10)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    images = torch.rand(3, 3, cfg.encoder.image_size, cfg.encoder.image_size)
    with torch.no_grad():
        ours = OrtBackbone(model, cfg.encoder.image_size, tmp_path)(images)  # 3: another batch size than exported
        theirs = model.extract(images)
    assert torch.allclose(ours.coarse, theirs.coarse, atol=1e-4)
    assert torch.allclose(ours.fine, theirs.fine, atol=1e-4)

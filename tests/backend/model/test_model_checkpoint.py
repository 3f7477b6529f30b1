"""Checkpoints rebuild their model from the file alone, with identical outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor

from hisem.model import HiSem, HiSemConfig, build_model, load_checkpoint, preset, save_checkpoint
from hisem.model.clip_vit import VisionTransformer
from hisem.model.config import CLIP_MEAN, CLIP_STD, EncoderConfig

VOCAB = {"<NULL>": 0, "<UNK>": 1, "<START>": 2, "<END>": 3, "road": 4}


def _assert_same_outputs(a: HiSem, b: HiSem, batch: dict[str, Tensor]) -> None:
    a.eval()
    b.eval()
    with torch.no_grad():
        oa = a(batch["before"], batch["after"], batch["tokens"][:, :-1])
        ob = b(batch["before"], batch["after"], batch["tokens"][:, :-1])
    for x, y in zip(oa, ob, strict=True):
        assert (x is None and y is None) or torch.equal(x, y)
    ids_a, _ = a.generate(batch["before"], batch["after"])
    ids_b, _ = b.generate(batch["before"], batch["after"])
    assert torch.equal(ids_a, ids_b)


def test_config_dict_round_trip() -> None:
    for name in ("tiny", "lite", "paper"):
        cfg = preset(name, vocab_size=99)
        assert HiSemConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("switch", [{}, {"bdam": {"enabled": False}, "hasd": {"enabled": False}}])
def test_tiny_round_trip(
    switch: dict[str, dict[str, bool]],
    tmp_path: Path,
    tiny_config: Callable[..., HiSemConfig],
    random_batch: Callable[..., dict[str, Tensor]],
) -> None:
    cfg = tiny_config(**switch)
    model = build_model(cfg)
    model.train()
    batch = random_batch(cfg, b=2)
    model(batch["before"], batch["after"])  # move the BatchNorm statistics away from their init
    path = tmp_path / "run" / "best.pt"
    save_checkpoint(path, model, VOCAB, {"epoch": 3, "metrics": {"bleu4": 0.5}})
    loaded, vocab, extra = load_checkpoint(path)
    assert vocab == VOCAB and extra == {"epoch": 3, "metrics": {"bleu4": 0.5}}
    assert loaded.cfg == model.cfg and not loaded.training
    _assert_same_outputs(model, loaded, batch)


def test_paper_round_trip_without_the_clip_file(
    tmp_path: Path, random_batch: Callable[..., dict[str, Tensor]]
) -> None:
    clip = tmp_path / "clip.pt"
    tower = VisionTransformer(64, 2, 16, 2)
    torch.save({f"visual.{k}": v for k, v in tower.state_dict().items()}, clip)
    encoder = EncoderConfig(
        name="paper", image_size=32, grid=2, weights=str(clip), mean=CLIP_MEAN, std=CLIP_STD
    )
    model = build_model(replace(preset("tiny", vocab_size=20), encoder=encoder))
    save_checkpoint(tmp_path / "ckpt.pt", model, VOCAB)
    clip.unlink()  # the checkpoint alone must suffice
    loaded, _, extra = load_checkpoint(tmp_path / "ckpt.pt")
    assert extra == {} and loaded.cfg.encoder.vit_width == 64
    _assert_same_outputs(model, loaded, random_batch(model.cfg, b=2))


def test_lite_round_trip(tmp_path: Path, random_batch: Callable[..., dict[str, Tensor]]) -> None:
    encoder = EncoderConfig(name="lite", image_size=64, grid=4, freeze=False, trainable_blocks=2)
    model = build_model(replace(preset("tiny", vocab_size=20), encoder=encoder))
    save_checkpoint(tmp_path / "ckpt.pt", model, VOCAB)
    loaded, _, _ = load_checkpoint(tmp_path / "ckpt.pt")
    _assert_same_outputs(model, loaded, random_batch(model.cfg, b=2))


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a HiSem checkpoint"):
        load_checkpoint(tmp_path / "other.pt")

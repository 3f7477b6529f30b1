"""How two real acquisitions of unchanged ground differ: the nuisances of real image pairs.

Applied to every pair with a real background (and to the synthetic pairs of a hybrid set), both
dates drawn independently from the same ranges, so none of them ever means "changed". Ranges
follow what real pairs show (AirChange, DSIFN, LEVIR-CD, Google Earth time series):
misregistration 0-4 px with sub-pixel parts, small rotation and scale, local warps of up to
~1.5 px (relief displacement of roofs and trees between view angles), per-date sensor colour
curves and saturation, a season shift of vegetation, haze, blur and a coarser source resolution,
JPEG artefacts, sensor noise, now and then a grey (panchromatic / archive) date.

Geometry uses torch's grid_sample (bilinear), one warp per date from the canvas to the image.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from hisem.data.synth.textures import value_noise

DRY = np.array([0.62, 0.55, 0.36], np.float32)  # the colour vegetation fades to in a dry season


@dataclass(frozen=True)
class RealLook:
    """One acquisition of a real-looking date."""

    shift: tuple[float, float]  # (dy, dx) px of the image window inside the canvas
    rotation: float  # radians
    scale: float  # image px per canvas px
    relief: float  # amplitude of the smooth local warp, px
    gain: tuple[float, float, float]  # per-channel exposure x colour of the light
    gamma: float
    contrast: float
    saturation: float
    season: float  # 0 = as imaged .. 1 = vegetation fully dried
    haze: float
    blur: float  # Gaussian sigma, px
    coarse: float  # >1: the date was imaged at this many times the GSD and upsampled
    jpeg: int  # 0 = none, else the JPEG quality it went through
    noise: float  # sigma in 0..255 units
    grey: bool


def _misregistration(rng: np.random.Generator) -> float:
    """Relative shift length: most pairs within a pixel, some 1-2.5 px, a few up to 4 px."""
    u = rng.random()
    return rng.uniform(0, 1) if u < 0.5 else rng.uniform(1, 2.5) if u < 0.85 else rng.uniform(2.5, 4)


def sample_real_looks(rng: np.random.Generator) -> tuple[RealLook, RealLook]:
    """The two dates' looks: a shared base position, independent everything else."""
    base = rng.uniform(-0.5, 0.5, 2)
    dist, direction = _misregistration(rng), rng.uniform(0, 2 * math.pi)
    rel = np.array([math.sin(direction), math.cos(direction)]) * dist
    looks = []
    for shift in (base - rel / 2, base + rel / 2):
        bright = rng.uniform(0.75, 1.3)
        looks.append(RealLook(
            shift=(float(shift[0]), float(shift[1])),
            rotation=float(rng.normal(0, 0.004)),  # ~0.25 deg
            scale=float(1 + rng.normal(0, 0.006)),
            relief=float(rng.uniform(0, 1.5) if rng.random() < 0.6 else 0.0),
            gain=tuple(float(bright * g) for g in rng.uniform(0.88, 1.12, 3)),  # type: ignore[arg-type]
            gamma=float(rng.uniform(0.75, 1.35)),
            contrast=float(rng.uniform(0.8, 1.25)),
            saturation=float(rng.uniform(0.6, 1.35)),
            season=float(rng.uniform(0, 0.7) if rng.random() < 0.4 else 0.0),
            haze=float(rng.uniform(0.05, 0.35) if rng.random() < 0.3 else 0.0),
            blur=float(rng.uniform(0.4, 1.3) if rng.random() < 0.4 else 0.0),
            coarse=float(rng.uniform(1.3, 2.5) if rng.random() < 0.25 else 1.0),
            jpeg=int(rng.integers(35, 91) if rng.random() < 0.35 else 0),
            noise=float(rng.uniform(0.5, 5.0)),
            grey=bool(rng.random() < 0.03),
        ))
    return looks[0], looks[1]


def coarsen(canvas: np.ndarray, factor: float) -> np.ndarray:
    """(3, S, S) imaged ``factor`` times coarser and brought back to S: how an upsampled archive looks."""
    if factor <= 1.0:
        return canvas
    t = torch.from_numpy(np.ascontiguousarray(canvas))[None]
    side = t.shape[-1]
    small = F.interpolate(t, size=max(8, round(side / factor)), mode="area")
    return F.interpolate(small, size=side, mode="bilinear", align_corners=False)[0].numpy()


def _gaussian(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, H, W)."""
    radius = max(1, math.ceil(2.5 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    taps = taps / taps.sum()
    c = img.shape[1]
    img = F.conv2d(F.pad(img, (0, 0, radius, radius), mode="replicate"), taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                   groups=c)
    return F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="replicate"), taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                    groups=c)


def warp_grid(look: RealLook, side: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """(1, size, size, 2) grid_sample coordinates of the image window inside a side x side canvas."""
    c, s = math.cos(look.rotation) * look.scale, math.sin(look.rotation) * look.scale
    k = size / side  # image half-width in the canvas's normalised units
    dy, dx = (2 * look.shift[0] / side, 2 * look.shift[1] / side)
    theta = torch.tensor([[c * k, -s * k, dx], [s * k, c * k, dy]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, [1, 1, size, size], align_corners=False)
    if look.relief > 0:
        # A smooth displacement field, correlated over ~40 px: roofs and crowns lean differently.
        field = np.stack([value_noise(rng, size, 40.0, octaves=1) for _ in range(2)], axis=-1)
        field = field - field.mean(axis=(0, 1))
        field *= look.relief / max(float(np.abs(field).max()), 1e-6)
        grid = grid + torch.from_numpy(field.astype(np.float32))[None] * (2 / side)
    return grid


def develop(canvas: np.ndarray, look: RealLook, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (3, side, side) 0..1 canvas seen through ``look``: the (size, size, 3) uint8 image."""
    side = canvas.shape[-1]
    t = torch.from_numpy(np.ascontiguousarray(coarsen(canvas, look.coarse)))[None].float()
    img = F.grid_sample(t, warp_grid(look, side, size, rng), mode="bilinear", padding_mode="border",
                        align_corners=False)  # (1, 3, size, size)
    if look.blur > 0:
        img = _gaussian(img, look.blur)
    x = img[0].numpy()
    if look.season > 0:
        # Vegetation (excess green) fades towards dry grass; built surfaces keep their colour.
        exg = np.clip((2 * x[1] - x[0] - x[2]) * 4, 0, 1) * look.season
        x = x + (DRY[:, None, None] * x.mean(axis=0, keepdims=True) * 1.6 - x) * exg * 0.8
    mean = x.mean(axis=0, keepdims=True)
    x = mean + (x - mean) * look.saturation
    x = x * np.asarray(look.gain, np.float32)[:, None, None]
    x = (x - 0.5) * look.contrast + 0.5  # about mid-grey, not the content: the same curve for both dates
    x = np.clip(x, 0, 1) ** np.float32(look.gamma)
    if look.haze > 0:
        veil = look.haze * np.clip(0.7 + 0.3 * value_noise(rng, size, 120.0, octaves=1), 0, 1)
        x = x + (np.float32(0.8) - x) * veil
    if look.grey:
        x = np.repeat(x.mean(axis=0, keepdims=True), 3, axis=0)
    x = x * 255.0 + rng.normal(0, look.noise, x.shape).astype(np.float32)
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if look.jpeg:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=look.jpeg)
        out = np.asarray(Image.open(buf).convert("RGB"))
    return np.ascontiguousarray(out)

"""Noise fields and colour palettes shared by the two dates of a pair.

Every surface in a scene takes its texture from the same few noise fields, sampled at the
pixel it covers. The fields are drawn once per pair, so a roof or a lawn that exists on both
dates has the identical texture on both: only the appearance nuisances (appearance.py) and the
change events make the two images differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

Color = tuple[float, float, float]

# Base colours (linear 0..1 RGB) picked from 0.5 m aerial imagery of suburbs and farmland.
SOIL_COLORS: tuple[Color, ...] = (
    (0.74, 0.67, 0.55),  # pale sand
    (0.66, 0.57, 0.45),  # light loam
    (0.58, 0.50, 0.40),  # darker earth
    (0.78, 0.72, 0.62),  # chalky bare land
)
GRASS_LUSH: Color = (0.30, 0.40, 0.20)
LAWN_GREEN: Color = (0.32, 0.46, 0.22)
GRASS_DRY: Color = (0.55, 0.52, 0.36)
TREE_LUSH: Color = (0.14, 0.24, 0.11)
TREE_DRY: Color = (0.30, 0.31, 0.17)
ROOF_COLORS: tuple[Color, ...] = (
    (0.36, 0.36, 0.38),  # dark grey shingles
    (0.52, 0.51, 0.50),  # mid grey
    (0.70, 0.69, 0.66),  # light grey
    (0.86, 0.86, 0.84),  # white membrane
    (0.60, 0.30, 0.22),  # terracotta
    (0.45, 0.34, 0.27),  # brown shingles
    (0.32, 0.44, 0.60),  # blue metal
    (0.74, 0.66, 0.52),  # beige
)
ROAD_COLORS: tuple[Color, ...] = (
    (0.68, 0.68, 0.66),  # concrete
    (0.36, 0.36, 0.37),  # asphalt
    (0.60, 0.52, 0.42),  # dirt
)
CAR_COLORS: tuple[Color, ...] = (
    (0.90, 0.90, 0.90),
    (0.12, 0.12, 0.13),
    (0.55, 0.56, 0.58),
    (0.62, 0.14, 0.12),
    (0.18, 0.25, 0.48),
)
WATER_COLORS: tuple[Color, ...] = ((0.16, 0.25, 0.27), (0.22, 0.30, 0.24), (0.25, 0.32, 0.38))
CROP_COLORS: tuple[Color, ...] = (
    (0.35, 0.46, 0.22),  # green crop
    (0.66, 0.60, 0.36),  # ripe crop
    (0.50, 0.40, 0.30),  # ploughed
)


def lerp(a: Color | np.ndarray, b: Color | np.ndarray, t: float | np.ndarray) -> np.ndarray:
    a_, b_ = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a_ + (b_ - a_) * t


def jitter(rng: np.random.Generator, color: Color, amount: float = 0.06) -> Color:
    """A colour varied in brightness and slightly in hue, so that no two objects are identical."""
    # Plain floats: this runs thousands of times per scene, on three numbers.
    gain, tint = 1.0 + rng.normal(0.0, amount), rng.normal(0.0, amount / 3, 3).tolist()
    r, g, b = (min(max(c * gain + t, 0.02), 0.98) for c, t in zip(color, tint, strict=True))
    return (r, g, b)


def value_noise(rng: np.random.Generator, side: int, cell_px: float, octaves: int = 3) -> np.ndarray:
    """Fractal value noise, (side, side) float32 with unit-ish spread, features ``cell_px`` wide.

    Bicubic upsampling of small Gaussian grids through PIL is the cheapest smooth noise there is
    (no per-pixel Python), and it scales to 4000 px scenes.
    """
    out = np.zeros((side, side), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        cell = cell_px / 2**octave
        if cell < 1.5:
            layer = rng.standard_normal((side, side), dtype=np.float32)
        else:
            # Upsample only the window of the grid that covers the canvas (PIL's resize box).
            span = side / cell
            n = int(np.ceil(span)) + 4
            grid = Image.fromarray(rng.standard_normal((n, n), dtype=np.float32), mode="F")
            x0, y0 = rng.uniform(1, n - span - 2, 2)
            box = (float(x0), float(y0), float(x0 + span), float(y0 + span))
            layer = np.asarray(grid.resize((side, side), Image.Resampling.BICUBIC, box=box))
        out += amp * layer
        total += amp**2
        amp *= 0.5
    return out / np.float32(np.sqrt(total))


@dataclass(frozen=True)
class Textures:
    """The noise fields of one pair, all (side, side) float32, about zero mean and unit spread."""

    patches: np.ndarray  # ~40 m blobs: where the ground is grassy or bare
    mid: np.ndarray  # ~5 m: mottling of ground, crowns, water
    fine: np.ndarray  # ~1 m: grain of roofs, asphalt, leaves

    @classmethod
    def draw(cls, rng: np.random.Generator, side: int, gsd: float) -> Textures:
        return cls(
            patches=value_noise(rng, side, 40.0 / gsd, octaves=3),
            mid=value_noise(rng, side, 5.0 / gsd, octaves=2),
            fine=value_noise(rng, side, 1.0 / gsd, octaves=2),
        )

    def vegetation(self, greenness: float) -> np.ndarray:
        """Grass cover of the open ground in [0, 1]; greenness shifts it from desert to meadow."""
        t = np.clip(0.5 + 0.9 * (self.patches + greenness) + 0.15 * self.mid, 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)  # smoothstep: mostly clearly grass or clearly soil

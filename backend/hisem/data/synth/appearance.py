"""Appearance nuisances: what makes two dates of an unchanged scene differ anyway.

Both dates of every pair, changed or not, get looks drawn from the same distribution, so
brightness, colour cast, haze, season, blur, noise or a pixel of misregistration never tell a
model whether something changed. Only the change events do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hisem.data.synth.textures import value_noise

MARGIN = 4  # canvas px kept around the image on each side: room for misregistration shifts (<= 4 px)
HAZE_COLOR = np.array([0.78, 0.80, 0.83], np.float32)


@dataclass(frozen=True)
class Look:
    """How one date was acquired."""

    season: float  # 0 = lush green vegetation .. 1 = dry, yellowed
    sun: float  # direction shadows point to, radians (x right, y down)
    shadow_len: float  # shadow length per metre of object height
    shadow_dark: float  # fraction of light missing in shadow
    gain: tuple[float, float, float]  # per-channel gain: exposure and colour of the light
    gamma: float
    haze: float  # strength of the veil of scattered light, 0..1
    blur: float  # Gaussian sigma, px: resolution of the sensor / resampling
    noise: float  # sensor noise sigma, in 0..255 units
    shift: tuple[int, int]  # (dy, dx) of the crop inside the canvas margin: misregistration


def sample_looks(rng: np.random.Generator) -> tuple[Look, Look]:
    """The looks of the two dates: a shared base with independent per-date deviations."""
    season0, sun0, len0 = rng.uniform(0, 0.8), rng.uniform(0, 2 * math.pi), rng.uniform(0.4, 1.1)
    shift0 = rng.integers(-1, 2, 2)
    # Relative misregistration of 0 to 4 px per axis, as real pairs have, kept inside the margin.
    delta = rng.choice(np.arange(-4, 5), 2, p=[0.03, 0.05, 0.1, 0.2, 0.24, 0.2, 0.1, 0.05, 0.03])
    shift1 = np.clip(shift0 + delta, -MARGIN, MARGIN)
    looks = []
    for shift in (shift0, shift1):
        bright = rng.uniform(0.85, 1.15)
        looks.append(
            Look(
                season=float(np.clip(season0 + rng.normal(0, 0.2), 0, 1)),
                sun=float(sun0 + rng.normal(0, 0.5)),  # dates weeks or hours apart
                shadow_len=float(len0 * rng.uniform(0.8, 1.25)),
                shadow_dark=float(rng.uniform(0.35, 0.6)),
                gain=tuple(float(bright * g) for g in rng.uniform(0.95, 1.05, 3)),  # type: ignore[misc]
                gamma=float(rng.uniform(0.85, 1.15)),
                haze=float(rng.uniform(0.08, 0.3) if rng.random() < 0.3 else rng.uniform(0, 0.06)),
                blur=float(rng.uniform(0.3, 0.8) if rng.random() < 0.25 else 0.0),
                noise=float(rng.uniform(0.8, 4.0)),
                shift=(int(shift[0]), int(shift[1])),
            )
        )
    return looks[0], looks[1]


def crop(canvas: np.ndarray, size: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The image window of a canvas (..., side, side), moved by ``shift`` inside the margin."""
    y, x = MARGIN + shift[0], MARGIN + shift[1]
    return canvas[..., y : y + size, x : x + size]


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable 5-tap Gaussian on (3, H, W): sigma <= 1 px needs no more taps."""
    taps = np.exp(-0.5 * (np.arange(-2, 3) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    _, h, w = img.shape
    pad = np.pad(img, ((0, 0), (2, 2), (0, 0)), mode="edge")
    img = sum(t * pad[:, i : i + h] for i, t in enumerate(taps))
    pad = np.pad(img, ((0, 0), (0, 0), (2, 2)), mode="edge")
    return sum(t * pad[:, :, i : i + w] for i, t in enumerate(taps))


def finish(canvas: np.ndarray, look: Look, size: int, gsd: float, rng: np.random.Generator) -> np.ndarray:
    """Turn a rendered canvas (float (3, side, side), 0..1) into the (size, size, 3) uint8 image."""
    img = crop(canvas, size, look.shift) * np.asarray(look.gain, np.float32)[:, None, None]
    img = np.clip(img, 0, 1) ** np.float32(look.gamma)
    if look.haze > 0:
        # Haze varies slowly across the scene (thin cloud, aerosol), never as a uniform veil.
        veil = look.haze * np.clip(0.7 + 0.3 * value_noise(rng, size, 80.0 / gsd, octaves=1), 0, 1)
        img += (HAZE_COLOR[:, None, None] - img) * veil
    if look.blur > 0:
        img = _blur(img, look.blur)
    # Sensor noise: triangular (sum of two uniforms) with the look's sigma; cheaper than normal.
    u = np.frombuffer(rng.bytes(2 * img.size), np.uint8).reshape(2, *img.shape)
    noise = (u[0].astype(np.float32) + u[1] - 254.5) * np.float32(look.noise / (255.0 / math.sqrt(6)))
    img = img * np.float32(255.0) + noise  # the -254.5 above also rounds: the cast below truncates
    np.clip(img, 0, 255, out=img)
    out = np.empty((size, size, 3), np.uint8)
    out[...] = img.transpose(1, 2, 0)
    return out

"""What a synthetic scene is: a list of map features on a square canvas, plus the occupancy grid.

Geometry lives in canvas pixels (x right, y down) but every size is chosen in metres and
divided by the GSD, so a bigger canvas holds more objects rather than bigger ones. The canvas
is a few pixels larger than the image: each date is cropped from it at a slightly different
offset (misregistration, appearance.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

from hisem.data.synth.textures import Color

# Feature kinds in drawing order, bottom to top (shadows go just below "building").
# "cleared" is the fresh soil left by a change event: drawn above lawns and fields it replaces.
KINDS = ("bare", "field", "lawn", "cleared", "pond", "drive", "road", "parking", "car", "building", "tree")
DISC_KINDS = frozenset({"tree"})  # points = (1, 2) centre, radius = crown radius
LINE_KINDS = frozenset({"road"})  # points = polyline, radius = road width

# Occupancy classes: what covers a canvas pixel, for placing new objects without overlaps.
GROUND, BARE, LAWN, FIELD, TREE, POND, DRIVE, ROAD, PARKING, BUILDING = range(10)
OCCUPANCY = {
    "bare": BARE,
    "cleared": BARE,
    "field": FIELD,
    "lawn": LAWN,
    "pond": POND,
    "drive": DRIVE,
    "road": ROAD,
    "parking": PARKING,
    "car": PARKING,
    "building": BUILDING,
    "tree": TREE,
}
OPEN_LAND = frozenset({GROUND, BARE})  # where construction may start without removing anything


@dataclass(frozen=True)
class Feature:
    """One map object. ``uid`` identifies it across the two dates of a pair."""

    uid: int
    kind: str
    points: np.ndarray  # (N, 2) x, y in canvas px: polygon, polyline, or (1, 2) disc centre
    radius: float = 0.0  # disc: crown radius px; line: road width px
    color: Color = (0.5, 0.5, 0.5)
    angle: float = 0.0  # radians: roof ridge, crop rows, parking bays
    height: float = 0.0  # metres; casts a shadow
    style: int = 0  # kind-specific variant (roof type, crop, surface)


@dataclass
class Scene:
    side: int  # canvas side, px
    gsd: float  # metres per pixel
    greenness: float  # shifts the open ground from bare soil (-1) to meadow (+1)
    soil: Color
    features: list[Feature] = field(default_factory=list)
    next_uid: int = 1  # 0 is the open ground

    def px(self, metres: float) -> float:
        return metres / self.gsd

    def add(self, kind: str, points: np.ndarray, **attrs: float | int | Color) -> Feature:
        feat = Feature(self.next_uid, kind, np.asarray(points, np.float64).reshape(-1, 2), **attrs)
        self.next_uid += 1
        self.features.append(feat)
        return feat

    def copy(self) -> Scene:
        return replace(self, features=list(self.features))

    def of_kind(self, kind: str) -> list[Feature]:
        return [f for f in self.features if f.kind == kind]

    def remove(self, uids: set[int]) -> None:
        self.features = [f for f in self.features if f.uid not in uids]


# ---- geometry ---------------------------------------------------------------------------------


def rect(cx: float, cy: float, width: float, length: float, angle: float) -> np.ndarray:
    """Corners (4, 2) of a rectangle whose ``length`` side points along ``angle``."""
    u = np.array([math.cos(angle), math.sin(angle)])
    v = np.array([-u[1], u[0]])
    half = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    return np.array([(cx, cy) + a * length / 2 * u + b * width / 2 * v for a, b in half])


def blob(rng: np.random.Generator, cx: float, cy: float, radius: float, rough: float = 0.25) -> np.ndarray:
    """An irregular round polygon: ponds, cleared patches, bare land."""
    n = 18
    theta = np.sort(rng.uniform(0, 2 * np.pi, n)) if rough > 0.3 else np.linspace(0, 2 * np.pi, n, False)
    # Smooth the radial wobble with a circular moving average, so outlines have no spikes.
    wobble = rng.normal(0, rough, n)
    wobble = (wobble + np.roll(wobble, 1) + np.roll(wobble, -1)) / 3
    r = radius * np.clip(1 + wobble, 0.5, 1.6)
    return np.stack([cx + r * np.cos(theta), cy + r * np.sin(theta)], axis=1)


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone-chain hull: a building's shadow is the hull of its roof and the roof moved away."""
    pts = sorted(map(tuple, points))

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def polyline_distance(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance (N,) from each point to a polyline (M, 2): which trees a new road cuts down."""
    a, b = line[:-1][None], line[1:][None]  # (1, M-1, 2)
    p = points[:, None]  # (N, 1, 2)
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0, 1)
    closest = a + t[..., None] * ab
    return np.sqrt(((p - closest) ** 2).sum(-1)).min(axis=1)


def polyline_length(line: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(line, axis=0), axis=1).sum())


def point_at(line: np.ndarray, t: float) -> np.ndarray:
    """The point at fraction ``t`` of a polyline's length."""
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = float(np.clip(t, 0, 1)) * cum[-1]
    i = min(int(np.searchsorted(cum, s, side="right")) - 1, len(seg) - 1)
    return line[i] + (line[i + 1] - line[i]) * (s - cum[i]) / max(seg[i], 1e-9)


def tangent_at(line: np.ndarray, t: float) -> np.ndarray:
    a, c = point_at(line, t - 0.01), point_at(line, t + 0.01)
    d = c - a
    return d / max(float(np.linalg.norm(d)), 1e-9)


# ---- rasterisation ------------------------------------------------------------------------------


def draw_feature(draw: ImageDraw.ImageDraw, f: Feature, fill: int, offset: tuple[int, int] = (0, 0),
                 pad: float = 0.0) -> None:
    """Draw ``f`` (grown by ``pad`` px) onto a PIL image whose origin is canvas point ``offset``."""
    pts = f.points - np.asarray(offset)
    if f.kind in DISC_KINDS:
        (cx, cy), r = pts[0], f.radius + pad
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif f.kind in LINE_KINDS:
        draw.line([tuple(p) for p in pts], fill=fill, width=max(1, round(f.radius + 2 * pad)), joint="curve")
    else:
        ring = [tuple(p) for p in pts]
        draw.polygon(ring, fill=fill)
        if pad >= 0.5:
            draw.line([*ring, ring[0]], fill=fill, width=round(2 * pad), joint="curve")


def reach(f: Feature) -> float:
    """How far the drawn shape extends beyond its points, px."""
    return f.radius if f.kind in DISC_KINDS else f.radius / 2 if f.kind in LINE_KINDS else 0.0


Box = tuple[int, int, int, int]  # y0, x0, y1, x1: a window of the canvas, ends excluded


def bounds(f: Feature, side: int, pad: float = 0.0) -> Box | None:
    """Bounding box of ``f`` as drawn (grown by ``pad``), clipped to the canvas; None if outside."""
    # Plain Python: called thousands of times per scene on 1-16 points, where each numpy call
    # would cost more than the arithmetic.
    grow = reach(f) + pad + 2
    xs, ys = f.points[:, 0].tolist(), f.points[:, 1].tolist()
    x0, y0 = max(int(min(xs) - grow), 0), max(int(min(ys) - grow), 0)
    x1, y1 = min(int(max(xs) + grow) + 1, side), min(int(max(ys) + grow) + 1, side)
    return (y0, x0, y1, x1) if x1 > x0 and y1 > y0 else None


def union_box(boxes: list[Box | None]) -> Box | None:
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return min(b[0] for b in real), min(b[1] for b in real), max(b[2] for b in real), max(b[3] for b in real)


def local_mask(f: Feature, side: int, pad: float = 0.0) -> tuple[int, int, np.ndarray] | None:
    """(y0, x0, bool mask) of ``f`` over its bounding box clipped to the canvas; None if outside."""
    box = bounds(f, side, pad)
    if box is None:
        return None
    y0, x0, y1, x1 = box
    img = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw_feature(ImageDraw.Draw(img), f, 1, (x0, y0), pad)
    return y0, x0, np.asarray(img, dtype=bool)


class Occupancy:
    """Per-pixel cover class of the canvas, kept up to date while a scene is laid out or edited."""

    def __init__(self, side: int) -> None:
        self.side = side
        self.cls = np.zeros((side, side), np.uint8)

    def copy(self) -> Occupancy:
        out = Occupancy(self.side)
        out.cls = self.cls.copy()
        return out

    def cover(self, f: Feature, pad: float = 0.0) -> np.ndarray | None:
        """Classes (K,) of the pixels under ``f``; None when it falls outside the canvas."""
        lm = local_mask(f, self.side, pad)
        if lm is None:
            return None
        y0, x0, m = lm
        return self.cls[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]][m]

    def fits(self, f: Feature, allowed: frozenset[int] = OPEN_LAND, pad: float = 0.0) -> bool:
        under = self.cover(f, pad)
        if under is None or under.size == 0:
            return False
        lut = np.zeros(256, bool)
        lut[list(allowed)] = True
        return bool(lut[under].all())

    def mark_all(self, feats: list[Feature], over: frozenset[int] | None = None) -> None:
        """``mark`` for many features at once: one PIL image over their joint bounding box."""
        if not feats:
            return
        grow = max(reach(f) for f in feats) + 2
        pts = np.concatenate([f.points for f in feats])
        x0, y0 = (int(v) for v in np.maximum(pts.min(axis=0) - grow, 0))
        x1, y1 = (int(v) + 1 for v in np.minimum(pts.max(axis=0) + grow, self.side - 1))
        if x1 <= x0 or y1 <= y0:
            return
        img = Image.new("L", (x1 - x0, y1 - y0), 0)
        draw = ImageDraw.Draw(img)
        for f in feats:
            draw_feature(draw, f, OCCUPANCY[f.kind] + 1, (x0, y0))
        val = np.asarray(img)
        region = self.cls[y0:y1, x0:x1]
        m = val > 0
        if over is not None:
            lut = np.zeros(256, bool)
            lut[list(over)] = True
            m &= lut[region]
        region[m] = val[m] - 1

    def mark(self, f: Feature, over: frozenset[int] | None = None) -> None:
        """Record ``f``; with ``over``, only where the current class is in it (trees stay off roads)."""
        lm = local_mask(f, self.side)
        if lm is None:
            return
        y0, x0, m = lm
        region = self.cls[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]]
        if over is not None:
            lut = np.zeros(256, bool)
            lut[list(over)] = True
            m = m & lut[region]
        region[m] = OCCUPANCY[f.kind]

"""Drawing a scene: a float RGB canvas plus the id of the object seen at every pixel.

Each kind is drawn at once: PIL fills an int32 raster with the feature's index (C speed), and
numpy shades all its pixels in one pass through per-feature attribute tables looked up by that
index. The id map (0 = open ground) is what makes the change mask exact: a pixel changed iff
the object seen there differs between the dates.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from hisem.data.synth.appearance import Look
from hisem.data.synth.builders import ROAD_ASPHALT, ROAD_DIRT, ROOF_FLAT, ROOF_GABLE
from hisem.data.synth.scene import KINDS, Feature, Scene, convex_hull, draw_feature
from hisem.data.synth.textures import GRASS_DRY, GRASS_LUSH, TREE_DRY, Textures, lerp

# A shader gets the kind's features, the feature index k (n,), pixel coordinates xs, ys (n,)
# and the edge flag (n,) of each of its pixels, and returns their colours (n, 3).
Shader = Callable[["_Ctx", list[Feature], np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class _Ctx:
    """What shaders need besides the features: textures at the shaded pixels, look, scale."""

    def __init__(self, tex: Textures, look: Look, gsd: float) -> None:
        self.tex, self.look, self.gsd = tex, look, gsd
        self.sun = np.array([math.cos(look.sun), math.sin(look.sun)], np.float32)  # shadow direction
        self.ys: np.ndarray = np.empty(0, int)
        self.xs: np.ndarray = np.empty(0, int)

    def mid(self) -> np.ndarray:
        return self.tex.mid[self.ys, self.xs]

    def fine(self) -> np.ndarray:
        return self.tex.fine[self.ys, self.xs]


def _table(feats: list[Feature], attr: str) -> np.ndarray:
    return np.array([getattr(f, attr) for f in feats], np.float32)


def _rect_frame(feats: list[Feature], k: np.ndarray, xs: np.ndarray,
                ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pixel coordinates (u along, v across) in each rectangle's frame, and its half sizes."""
    corners = np.stack([f.points[:4] for f in feats]).astype(np.float32)  # (F, 4, 2), see scene.rect
    centre = corners.mean(axis=1)  # (F, 2)
    along = corners[:, 0] - corners[:, 1]
    across = corners[:, 1] - corners[:, 2]
    half_len = np.linalg.norm(along, axis=1) / 2
    half_wid = np.linalg.norm(across, axis=1) / 2
    along /= np.maximum(2 * half_len, 1e-6)[:, None]
    across /= np.maximum(2 * half_wid, 1e-6)[:, None]
    dx, dy = xs + 0.5 - centre[k, 0], ys + 0.5 - centre[k, 1]
    u = dx * along[k, 0] + dy * along[k, 1]
    v = dx * across[k, 0] + dy * across[k, 1]
    return u, v, half_len[k], half_wid[k], along[k], across[k]


def _flat(amp_mid: float, amp_fine: float) -> Shader:
    def shade(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
              edge: np.ndarray) -> np.ndarray:
        base = _table(feats, "color")[k]
        return base * (1 + amp_mid * c.mid() + amp_fine * c.fine())[:, None]

    return shade


def _lawn(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
          edge: np.ndarray) -> np.ndarray:
    # Watered lawns stay greener than the open ground through the dry season.
    base = lerp(_table(feats, "color")[k], GRASS_DRY, 0.4 * c.look.season)
    return base * (1 + 0.04 * c.mid() + 0.05 * c.fine())[:, None]


def _field(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
           edge: np.ndarray) -> np.ndarray:
    """Crop rows: a sine across the rows at each field's own angle and row spacing."""
    angle, period = _table(feats, "angle")[k], _table(feats, "radius")[k]
    phase = (xs * np.cos(angle) + ys * np.sin(angle)) / np.maximum(period, 1.0)
    rows = 0.5 + 0.5 * np.sin(2 * np.pi * phase)
    base = _table(feats, "color")[k]
    green = (_table(feats, "style")[k] == 0)[:, None]
    base = np.where(green, lerp(base, GRASS_DRY, 0.5 * c.look.season), base)
    light = 0.84 + 0.28 * rows + 0.05 * c.mid() + 0.04 * c.fine() - 0.1 * edge
    return base * light[:, None]


def _pond(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
          edge: np.ndarray) -> np.ndarray:
    base = _table(feats, "color")[k] * (0.9 + 0.06 * c.mid())[:, None]
    bank = np.array([0.45, 0.45, 0.33], np.float32)  # muddy, weedy shore
    return np.where(edge[:, None], lerp(base, bank, 0.6), base)


def _road(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
          edge: np.ndarray) -> np.ndarray:
    surface = _table(feats, "style")[k]
    base = _table(feats, "color")[k] * (1 + 0.04 * c.mid() + 0.05 * c.fine())[:, None]
    # Paved roads have a bright kerb; dirt tracks fray into the ground instead.
    kerb = edge & (surface != ROAD_DIRT)
    base = np.where(kerb[:, None], base * 1.15 + 0.05, base)
    worn = (surface == ROAD_ASPHALT)[:, None]
    return np.where(worn, base * (1 + 0.06 * c.mid())[:, None], base)


def _parking(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
             edge: np.ndarray) -> np.ndarray:
    """Painted bay lines between the car slots (cars are placed every 2.7 m, see builders)."""
    u, v, half_len, half_wid, _, _ = _rect_frame(feats, k, xs, ys)
    bay = 2.7 / c.gsd
    slot = (u + half_len) / bay - 0.5
    in_bays = np.abs(v) > half_wid - 5.4 / c.gsd  # the two rows of bays along the long sides
    line = (np.abs(slot - np.round(slot)) * bay < max(0.6, 0.12 / c.gsd)) & in_bays
    base = _table(feats, "color")[k] * (1 + 0.03 * c.fine())[:, None]
    return np.where(line[:, None], np.float32(0.88), base)


def _car(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
         edge: np.ndarray) -> np.ndarray:
    u, _, half_len, _, _, _ = _rect_frame(feats, k, xs, ys)
    glass = np.abs(u / half_len) < 0.35  # windscreen and roof glass read dark from above
    base = _table(feats, "color")[k]
    return np.where(glass[:, None], base * 0.35 + 0.05, base * (0.9 + 0.1 * (1 - edge))[:, None])


def _building(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
              edge: np.ndarray) -> np.ndarray:
    """Roof facets lit by the sun: hip roofs have four, gable roofs two, flat roofs one."""
    u, v, half_len, half_wid, along, across = _rect_frame(feats, k, xs, ys)
    style = _table(feats, "style")[k]
    end_facet = (half_len - np.abs(u)) < (half_wid - np.abs(v))
    normal = np.where((end_facet & (style == 0))[:, None], along * np.sign(u)[:, None],
                      across * np.sign(v)[:, None])  # (n, 2) horizontal part of the facet normal
    normal = np.where((style == ROOF_FLAT)[:, None], 0.0, normal)
    lit = 1 - 0.25 * (normal @ c.sun)  # facets facing away from the shadows face the sun
    ridge = (style == ROOF_GABLE) & (np.abs(v) < 0.6)
    # Flat roofs: membrane seams every 3 m read as a faint grid.
    seam_u, seam_v = np.abs((u * c.gsd) % 3.0 - 1.5) > 1.35, np.abs((v * c.gsd) % 3.0 - 1.5) > 1.35
    seam = (style == ROOF_FLAT) & (seam_u | seam_v)
    lit = lit * np.where(ridge, 1.1, 1.0) * np.where(edge, 0.8, 1.0) * np.where(seam, 0.93, 1.0)
    lit *= 1 + 0.05 * c.fine()
    return _table(feats, "color")[k] * lit[:, None]


def _tree(c: _Ctx, feats: list[Feature], k: np.ndarray, xs: np.ndarray, ys: np.ndarray,
          edge: np.ndarray) -> np.ndarray:
    """Round crowns: brighter on the sun side, darker at the rim, clumpy leaf texture."""
    centre = np.stack([f.points[0] for f in feats]).astype(np.float32)
    r = _table(feats, "radius")[k]
    dx, dy = (xs + 0.5 - centre[k, 0]) / r, (ys + 0.5 - centre[k, 1]) / r
    light = 0.9 - 0.3 * (dx * c.sun[0] + dy * c.sun[1]) - 0.3 * (dx * dx + dy * dy)
    light += 0.16 * c.fine() + 0.08 * c.mid()
    base = lerp(_table(feats, "color")[k], TREE_DRY, 0.6 * c.look.season)
    return base * light[:, None]


SHADERS: dict[str, Shader] = {
    "bare": _flat(0.07, 0.05),
    "cleared": _flat(0.06, 0.06),
    "field": _field,
    "lawn": _lawn,
    "pond": _pond,
    "drive": _flat(0.02, 0.03),
    "road": _road,
    "parking": _parking,
    "car": _car,
    "building": _building,
    "tree": _tree,
}
EDGE_KINDS = frozenset({"road", "field", "car", "building", "pond"})  # shaded outline: 1 px, ponds 2 px


def _edges(idx: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` px of another object's pixel (kerbs, shores, roof outlines)."""
    e = np.zeros(idx.shape, bool)
    for d in range(1, width + 1):
        e[d:] |= idx[d:] != idx[:-d]
        e[:-d] |= idx[:-d] != idx[d:]
        e[:, d:] |= idx[:, d:] != idx[:, :-d]
        e[:, :-d] |= idx[:, :-d] != idx[:, d:]
    return e


def shadow_map(scene: Scene, look: Look) -> np.ndarray:
    """Shadow coverage 0..1 (side, side): each object's outline swept away from the sun."""
    img = Image.new("L", (scene.side, scene.side), 0)
    draw = ImageDraw.Draw(img)
    direction = np.array([math.cos(look.sun), math.sin(look.sun)])
    for f in scene.features:
        if f.height <= 0:
            continue
        offset = direction * scene.px(f.height * look.shadow_len)
        if f.kind == "tree":  # the crown casts its shadow from half the tree's height up
            moved = Feature(f.uid, f.kind, f.points + offset * 0.6, f.radius * 0.95)
            draw_feature(draw, moved, 255)
        else:
            hull = convex_hull(np.concatenate([f.points, f.points + offset]))
            draw.polygon([tuple(p) for p in hull], fill=255)
    img = img.filter(ImageFilter.BoxBlur(1))  # penumbra
    return np.asarray(img, np.float32) / 255.0


def render(scene: Scene, tex: Textures, look: Look) -> tuple[np.ndarray, np.ndarray]:
    """(canvas RGB float32 (3, side, side) in 0..1, object ids int32 (side, side), 0 = open ground)."""
    side = scene.side
    veg = tex.vegetation(scene.greenness)
    grass = lerp(GRASS_LUSH, GRASS_DRY, look.season)
    soil = np.asarray(scene.soil, np.float32)
    # Channels first: per-pixel factors broadcast over planes, much faster than over a last axis of 3.
    img = soil[:, None, None] + (grass - soil)[:, None, None] * veg  # (3, side, side)
    img *= 1 + 0.1 * tex.mid + 0.12 * tex.fine
    # Scrub: dark clumps of bushes where fine noise peaks on grassy ground.
    img *= 1 - 0.35 * np.clip(tex.fine - 1.7, 0, 1) * veg
    # One raster for all features, drawn bottom to top: it is the z-buffer, and a single PIL
    # image costs far less than one per kind.
    rank = {kind: r for r, kind in enumerate(KINDS)}
    ordered = sorted(scene.features, key=lambda f: rank[f.kind])  # stable: list order within a kind
    raster = Image.new("I", (side, side), 0)
    draw = ImageDraw.Draw(raster)
    for i, f in enumerate(ordered):
        draw_feature(draw, f, i + 1)
    idx = np.asarray(raster)
    ys, xs = np.nonzero(idx)
    pos = idx[ys, xs] - 1  # index into ordered
    kind_rank = np.array([rank[f.kind] for f in ordered], np.int16)
    pix_rank = kind_rank[pos]
    first = np.searchsorted(kind_rank, np.arange(len(KINDS)))  # where each kind starts in ordered
    edge1 = _edges(idx, 1)[ys, xs]
    edge2 = _edges(idx, 2)[ys, xs] if any(f.kind == "pond" for f in ordered) else edge1
    ctx = _Ctx(tex, look, scene.gsd)
    for r, kind in enumerate(KINDS):
        sel = np.nonzero(pix_rank == r)[0]
        if sel.size == 0:
            continue
        feats = ordered[first[r] : first[r + 1]] if r + 1 < len(KINDS) else ordered[first[r] :]
        ctx.ys, ctx.xs = ys[sel], xs[sel]
        edge = (edge2 if kind == "pond" else edge1)[sel] if kind in EDGE_KINDS else np.zeros(sel.size, bool)
        img[:, ctx.ys, ctx.xs] = SHADERS[kind](ctx, feats, pos[sel] - first[r], ctx.xs, ctx.ys, edge).T
    # Shadows fall on the ground and everything low, not on roofs or crowns.
    shade = 1 - look.shadow_dark * shadow_map(scene, look)
    high = np.zeros((side, side), bool)
    high[ys, xs] = pix_rank >= rank["building"]
    shade[high] = 1.0
    for c, blue in enumerate((1.0, 0.97, 0.9)):  # lit by the blue sky only, shade is bluish
        img[c] *= shade**blue if blue != 1.0 else shade
    ids = np.zeros((side, side), np.int32)
    ids[ys, xs] = np.array([f.uid for f in ordered], np.int32)[pos]
    return img, ids

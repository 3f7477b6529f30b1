"""Bi-temporal pairs on real backgrounds: real unchanged pairs, and change placed on real ground.

Three kinds, all with the data contract of ``pair.SynthPair`` (exact masks, five captions):

- ``same``: one real crop seen twice under independent real looks (real_looks.py): the hard
  negatives, "nothing changed" however much light, season, sensor and registration differ.
  A third of them carry synthetic objects pasted identically into both dates, so a pasted-looking
  object never means change by itself.
- ``objects``: the generator's own change events (buildings with shadows, roads, ponds, trees,
  cleared land) rendered as usual, and only the objects the events touched composited onto real
  ground, each date with its own shadows. The mask is exactly the pixels where a touched object
  shows in either date; captions come from the events as in the synthetic mode, without the
  former-land and along-the-road phrases (the real ground under them is not the synthetic one).
- ``buildings``: real buildings of a background with footprints, removed by covering their
  (dilated: footprints sit a few px off) outline with ground copied from a building-free place
  nearby. Demolished or, with the dates swapped, built: a real building appearing on real ground.
  The mask is exactly the covered pixels.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from hisem.data.synth.appearance import MARGIN, Look
from hisem.data.synth.backgrounds import BackgroundBank, Canvas
from hisem.data.synth.captions import captions
from hisem.data.synth.change import ChangeEvent
from hisem.data.synth.pair import MIN_EVENT_M2, SynthPair, event_mask, place_of, render_pair
from hisem.data.synth.real_looks import coarsen, develop, sample_real_looks
from hisem.data.synth.render import shadow_map
from hisem.data.synth.scene import Scene

REAL_KINDS = ("same", "objects", "buildings")
DECOY_KINDS = frozenset({"building", "tree", "pond", "parking", "car", "road"})
BIG_BUILDING_M2 = 400.0  # above this a removed or added building is "a large building"


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Binary dilation by a (2 px + 1)^2 square."""
    if px <= 0:
        return mask
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.max_pool2d(t, 2 * px + 1, stride=1, padding=px)[0, 0].numpy() > 0


def composite(ground: np.ndarray, canvas: np.ndarray, ids: np.ndarray, scene: Scene, look: Look,
              uids: frozenset[int]) -> np.ndarray:
    """Real ``ground`` (3, S, S) with the objects ``uids`` of a rendered canvas on top, and their shadows."""
    alpha = np.isin(ids, np.fromiter(uids, np.int32, len(uids)))
    tall = [f for f in scene.features if f.uid in uids and f.height > 0]
    out = ground.copy()
    if tall:
        shade = shadow_map(replace(scene, features=tall), look)
        out *= 1 - look.shadow_dark * shade * ~alpha
    out[:, alpha] = canvas[:, alpha]
    return out


def _two_dates(rng: np.random.Generator, canvas_b: np.ndarray, canvas_a: np.ndarray,
               size: int) -> tuple[np.ndarray, np.ndarray]:
    """Both canvases through independent real looks; a quarter share a coarser source (archives)."""
    if rng.random() < 0.25:
        factor = rng.uniform(1.5, 3.5)
        canvas_b, canvas_a = coarsen(canvas_b, factor), coarsen(canvas_a, factor)
    look_b, look_a = sample_real_looks(rng)
    return develop(canvas_b, look_b, size, rng), develop(canvas_a, look_a, size, rng)


def _same(rng: np.random.Generator, bank: BackgroundBank, size: int, gsd: float) -> SynthPair:
    side = size + 2 * MARGIN
    ground = bank.crop(rng, side).rgb
    canvas_b = canvas_a = ground
    if rng.random() < 1 / 3:
        r = render_pair(rng, size, gsd, changed=False)
        centre, radius = rng.uniform(0, side, 2), rng.uniform(30, 110)
        decoys = frozenset(
            f.uid for f in r.scene_b.features
            if f.kind in DECOY_KINDS and np.hypot(*(f.points.mean(axis=0) - centre)) < radius
        )
        canvas_b = composite(ground, r.canvas_b, r.ids_b, r.scene_b, r.look_b, decoys)
        canvas_a = composite(ground, r.canvas_a, r.ids_a, r.scene_a, r.look_a, decoys)
    before, after = _two_dates(rng, canvas_b, canvas_a, size)
    return SynthPair(before, after, np.zeros((size, size), np.uint8), captions([], rng), 0, [])


def _objects(rng: np.random.Generator, bank: BackgroundBank, size: int, gsd: float) -> SynthPair:
    side = size + 2 * MARGIN
    r = render_pair(rng, size, gsd, changed=True)
    touched = frozenset().union(*(e.added | e.removed for e in r.events))
    ground = bank.crop(rng, side).rgb
    canvas_b = composite(ground, r.canvas_b, r.ids_b, r.scene_b, r.look_b, touched)
    canvas_a = composite(ground, r.canvas_a, r.ids_a, r.scene_a, r.look_a, touched)
    before, after = _two_dates(rng, canvas_b, canvas_a, size)
    worthy = [replace(e, on=None, along_road=False, both_sides=False) for e in r.worthy]
    return SynthPair(before, after, event_mask(r.events, size), captions(worthy, rng), 1, r.events)


def _inner_buildings(ids: np.ndarray, size: int, min_px: float) -> list[tuple[int, np.ndarray]]:
    """(id, centroid) of the buildings wholly inside the image window and big enough to caption."""
    inner = ids[MARGIN : MARGIN + size, MARGIN : MARGIN + size]
    uids, inside = np.unique(inner[inner > 0], return_counts=True)
    total = dict(zip(*np.unique(ids[ids > 0], return_counts=True), strict=True))
    out = []
    for uid, n in zip(uids.tolist(), inside.tolist(), strict=True):
        if n == total[uid] and n >= min_px:
            ys, xs = np.nonzero(ids == uid)
            out.append((uid, np.array([ys.mean(), xs.mean()])))
    return out


def _cover(rgb: np.ndarray, region: np.ndarray, occupied: np.ndarray,
           rng: np.random.Generator) -> np.ndarray | None:
    """``rgb`` with ``region`` covered by ground copied from a nearby place clear of ``occupied``.

    The copy is feathered inside the region only, so every changed pixel stays inside it.
    """
    side = rgb.shape[-1]
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    for _ in range(60):
        reach = max(y1 - y0, x1 - x0, 12)
        dist, angle = rng.uniform(reach, max(2.5 * reach, 100)), rng.uniform(0, 2 * np.pi)
        dy, dx = int(round(dist * np.sin(angle))), int(round(dist * np.cos(angle)))
        if not (y0 + dy >= 0 and y1 + dy <= side and x0 + dx >= 0 and x1 + dx <= side):
            continue
        if occupied[ys + dy, xs + dx].any():
            continue
        # Feather: full weight 2 px inside the outline, fading to 0.5 on it.
        inner = torch.from_numpy(region.astype(np.float32))[None, None]
        soft = F.avg_pool2d(inner, 5, stride=1, padding=2, count_include_pad=False)[0, 0].numpy()
        alpha = np.where(region, np.clip(soft * 2 - 0.5, 0.5, 1.0), 0.0).astype(np.float32)
        out = rgb.copy()
        src = np.roll(rgb, (-dy, -dx), axis=(1, 2))
        out[:, region] = rgb[:, region] * (1 - alpha[region]) + src[:, region] * alpha[region]
        return out
    return None


def _buildings(rng: np.random.Generator, bank: BackgroundBank, size: int, gsd: float) -> SynthPair | None:
    """A real building change; None when this crop offers no building that can be covered."""
    side = size + 2 * MARGIN
    canvas: Canvas = bank.crop(rng, side, need_buildings=True)
    assert canvas.buildings is not None
    ids = canvas.buildings
    candidates = _inner_buildings(ids, size, MIN_EVENT_M2 / gsd**2)
    if not candidates:
        return None
    # A cluster: a seed building and its nearest neighbours, as neighbourhoods change together.
    seed = candidates[int(rng.integers(len(candidates)))][1]
    near = sorted(candidates, key=lambda c: float(np.hypot(*(c[1] - seed))))
    n = min(len(near), int(rng.choice([1, 2, 3, 4, 6], p=[0.4, 0.25, 0.15, 0.1, 0.1])))
    occupied = dilate(ids > 0, 3)
    rgb, chosen, region = canvas.rgb, [], np.zeros_like(occupied)
    for uid, centre in near[:n]:
        if chosen and np.hypot(*(centre - seed)) > 120:
            break
        own = dilate(ids == uid, 3)  # footprints sit a few px off their roofs
        covered = _cover(rgb, own, occupied, rng)
        if covered is None:
            continue
        rgb, region = covered, region | own
        chosen.append(uid)
    if not chosen:
        return None
    built = rng.random() < 0.5
    canvas_b, canvas_a = (rgb, canvas.rgb) if built else (canvas.rgb, rgb)
    before, after = _two_dates(rng, canvas_b, canvas_a, size)
    window = region[MARGIN : MARGIN + size, MARGIN : MARGIN + size]
    ys, xs = np.nonzero(window)
    mean_m2 = window.sum() * gsd**2 / len(chosen)
    uids = frozenset(chosen)
    event = ChangeEvent(
        "buildings_built" if built else "buildings_demolished",
        added=uids if built else frozenset(), removed=frozenset() if built else uids, subjects=uids,
        detail="big" if mean_m2 > BIG_BUILDING_M2 else "house", count=len(chosen),
        place=place_of(ys, xs, size), box=(0, 0, size, size), footprint=window,
    )
    mask = window.astype(np.uint8) * 255
    return SynthPair(before, after, mask, captions([event], rng), 1, [event])


def make_real_pair(rng: np.random.Generator | np.random.SeedSequence | int, bank: BackgroundBank, kind: str,
                   size: int = 256, gsd: float = 0.5) -> SynthPair:
    """One pair of ``kind`` (REAL_KINDS) on the bank's backgrounds; deterministic for a seed."""
    rng = np.random.default_rng(rng)
    if kind == "same":
        return _same(rng, bank, size, gsd)
    if kind == "objects":
        return _objects(rng, bank, size, gsd)
    if kind == "buildings":
        for _ in range(30):
            pair = _buildings(rng, bank, size, gsd)
            if pair is not None:
                return pair
        return _objects(rng, bank, size, gsd)  # no coverable building in 30 crops
    raise ValueError(f"unknown real pair kind {kind!r}; choose one of {REAL_KINDS}")

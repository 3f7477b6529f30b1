"""One synthetic bi-temporal pair in memory: images, change mask, captions, events.

The data contract (the same as a LEVIR-CC sample plus its mask):
    before, after   (H, W, 3) uint8 RGB, the same ground seen on two dates at ``gsd`` m/px
    mask            (H, W) uint8, 255 where the visible object changed, 0 elsewhere
    captions        five different lower-case sentences without the final period
    changeflag      0 iff nothing changed (then the mask is all 0 and the captions are
                    LEVIR-CC's five no-change sentences, including "the scene is the same as before")
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hisem.data.synth.appearance import MARGIN, Look, finish, sample_looks
from hisem.data.synth.captions import captions
from hisem.data.synth.change import ChangeEvent
from hisem.data.synth.events import apply_events
from hisem.data.synth.layout import REFERENCE_M2, random_scene
from hisem.data.synth.render import render
from hisem.data.synth.scene import BARE, FIELD, GROUND, LAWN, TREE, Occupancy, Scene, bounds, union_box
from hisem.data.synth.textures import Textures

MIN_EVENT_M2 = 16.0  # smaller visible changes go into the mask but not into the captions


@dataclass(frozen=True)
class SynthPair:
    """A pair as described in the module docstring.

    ``events`` holds every change, measured (footprint, count, place, former land); the mask is
    the union of their footprints. Changes too small to see (under ``MIN_EVENT_M2``, or no
    object at least 40 % inside the image) are in the mask but not in the captions.
    """

    before: np.ndarray  # (H, W, 3) uint8
    after: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) uint8, 0 / 255
    captions: list[str]  # 5
    changeflag: int
    events: list[ChangeEvent]


def place_of(ys: np.ndarray, xs: np.ndarray, size: int) -> tuple[str | None, str | None]:
    """(row, col) of the image thirds holding at least 60 % of these pixels; None where spread."""

    def third(coords: np.ndarray, names: tuple[str, str, str]) -> str | None:
        share = np.bincount(np.minimum(coords * 3 // size, 2), minlength=3) / max(len(coords), 1)
        best = int(share.argmax())
        return names[best] if share[best] >= 0.6 else None

    return third(ys, ("top", "middle", "bottom")), third(xs, ("left", "middle", "right"))


def _land(cls: np.ndarray, veg: np.ndarray) -> str | None:
    """What most of the pixels were before: "bare", "grass", "trees", "field" (>= 55 %), else None."""
    if cls.size == 0:
        return None
    grassy = (cls == LAWN) | ((cls == GROUND) & (veg >= 0.5))
    shares = {
        "bare": float(((cls == BARE) | ((cls == GROUND) & (veg < 0.5))).mean()),
        "grass": float(grassy.mean()),
        "trees": float((cls == TREE).mean()),
        "field": float((cls == FIELD).mean()),
    }
    best = max(shares, key=shares.__getitem__)
    return best if shares[best] >= 0.55 else None


def _pixel_counts(ids: np.ndarray) -> dict[int, int]:
    uids, counts = np.unique(ids, return_counts=True)
    return dict(zip(uids.tolist(), counts.tolist(), strict=True))


def _measure(events: list[ChangeEvent], before: Scene, after: Scene, ids_b: np.ndarray, ids_a: np.ndarray,
             occ: Occupancy, veg: np.ndarray, size: int) -> list[ChangeEvent]:
    """Fill in each event's footprint, visible count, place and former land, in the image frame.

    Each event is measured inside the bounding box of the objects it touched: every pixel it
    changed lies there, and a town-sized canvas is never scanned once per event.
    """
    feats = {f.uid: f for f in before.features} | {f.uid: f for f in after.features}
    out = []
    for ev in events:
        cbox = union_box([bounds(feats[u], before.side) for u in ev.added | ev.removed])  # canvas frame
        y0, x0, y1, x1 = cbox or (0, 0, 0, 0)
        iy0, ix0 = max(y0 - MARGIN, 0), max(x0 - MARGIN, 0)  # image frame
        iy1, ix1 = max(min(y1 - MARGIN, size), iy0), max(min(x1 - MARGIN, size), ix0)
        window = np.s_[iy0 + MARGIN : iy1 + MARGIN, ix0 + MARGIN : ix1 + MARGIN]
        sub_b, sub_a = ids_b[window], ids_a[window]
        changed = sub_b != sub_a
        in_after = np.isin(sub_a, np.fromiter(ev.added, np.int32))
        fp = changed & (np.isin(sub_b, np.fromiter(ev.removed, np.int32)) | in_after)
        # A subject counts when at least 40 % of what the canvas shows of it is inside the image.
        subj = np.fromiter(ev.subjects, np.int32)
        full_ids, img_ids = (ids_a, sub_a) if ev.subjects <= ev.added else (ids_b, sub_b)
        full_ids = full_ids[y0:y1, x0:x1]
        full = _pixel_counts(full_ids[np.isin(full_ids, subj)])
        seen = _pixel_counts(img_ids[np.isin(img_ids, subj) & changed])
        count = sum(1 for uid, n in seen.items() if n >= 0.4 * full[uid])
        new_land = in_after & changed
        land = _land(occ.cls[window][new_land], veg[window][new_land]) if ev.added else None
        ys, xs = np.nonzero(fp)
        out.append(replace(ev, box=(iy0, ix0, iy1, ix1), footprint=fp, count=count, on=land,
                           place=place_of(ys + iy0, xs + ix0, size)))
    return out


def _n_events(rng: np.random.Generator, size: int, gsd: float) -> int:
    """One to three events per LEVIR-CC-sized tile, proportionally more on bigger canvases."""
    tiles = max(1.0, (size * gsd) ** 2 / REFERENCE_M2)
    return int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]) * round(tiles))


@dataclass(frozen=True)
class RenderedPair:
    """A synthetic pair before finishing: canvases (3, side, side) 0..1, object ids, measured events.

    ``worthy`` are the events big and visible enough to caption; ``side`` = size + 2 x MARGIN.
    """

    canvas_b: np.ndarray
    canvas_a: np.ndarray
    ids_b: np.ndarray  # (side, side) int32, 0 = open ground
    ids_a: np.ndarray
    scene_b: Scene
    scene_a: Scene
    look_b: Look
    look_a: Look
    events: list[ChangeEvent]
    worthy: list[ChangeEvent]


def render_pair(rng: np.random.Generator, size: int, gsd: float, changed: bool) -> RenderedPair:
    """Lay out, change and render one scene (both dates); retried until a visible change fits."""
    side, roi = size + 2 * MARGIN, (float(MARGIN), float(MARGIN + size))
    min_px = MIN_EVENT_M2 / gsd**2
    for _ in range(50):
        scene, occ = random_scene(rng, side, gsd)
        tex = Textures.draw(rng, side, gsd)
        look_b, look_a = sample_looks(rng)
        canvas_b, ids_b = render(scene, tex, look_b)
        events: list[ChangeEvent] = []
        after = scene
        if changed:
            veg = tex.vegetation(scene.greenness)
            after, events = apply_events(scene, occ, rng, veg, roi, _n_events(rng, size, gsd))
            canvas_a, ids_a = render(after, tex, look_a)
            events = _measure(events, scene, after, ids_b, ids_a, occ, veg, size)
            worthy = [e for e in events if e.count > 0 and e.pixels >= min_px]
            if not worthy:
                continue  # nothing visible happened: lay out another scene
        else:
            (canvas_a, ids_a), worthy = render(scene, tex, look_a), []
        return RenderedPair(canvas_b, canvas_a, ids_b, ids_a, scene, after, look_b, look_a, events, worthy)
    raise RuntimeError(f"no visible change event fits a {size} px scene at {gsd} m/px")


def event_mask(events: list[ChangeEvent], size: int) -> np.ndarray:
    """(size, size) uint8, 255 on the union of the events' footprints."""
    mask = np.zeros((size, size), np.uint8)
    for e in events:
        mask[e.box[0] : e.box[2], e.box[1] : e.box[3]][e.footprint] = 255
    return mask


def make_pair(rng: np.random.Generator | np.random.SeedSequence | int, size: int = 256, gsd: float = 0.5,
              changed: bool | None = None) -> SynthPair:
    """Render one pair. Deterministic for a seed; ``changed=None`` flips a fair coin.

    Sizes are in metres through ``gsd``: a 4000 px canvas is a town of many blocks and
    proportionally many change events, not one block blown up.
    """
    rng = np.random.default_rng(rng)
    if changed is None:
        changed = bool(rng.random() < 0.5)
    r = render_pair(rng, size, gsd, changed)
    return SynthPair(
        before=finish(r.canvas_b, r.look_b, size, gsd, rng),
        after=finish(r.canvas_a, r.look_a, size, gsd, rng),
        mask=event_mask(r.events, size),
        captions=captions(r.worthy, rng),
        changeflag=int(changed),
        events=r.events,
    )

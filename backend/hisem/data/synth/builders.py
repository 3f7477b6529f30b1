"""Placing one object (a house on its lot, a tree clump, a pond, a road...) into a scene.

Shared by the layout of the first date (layout.py) and by the change events (events.py), so a
house built by an event looks exactly like the houses that were already there. Every builder
checks the occupancy grid and returns None, adding nothing, when the object does not fit.
"""

from __future__ import annotations

import math

import numpy as np

from hisem.data.synth.scene import (
    BARE,
    GROUND,
    LAWN,
    OPEN_LAND,
    ROAD,
    TREE,
    Feature,
    Occupancy,
    Scene,
    blob,
    bounds,
    local_mask,
    polyline_distance,
    rect,
    union_box,
)
from hisem.data.synth.textures import (
    CAR_COLORS,
    CROP_COLORS,
    LAWN_GREEN,
    ROAD_COLORS,
    ROOF_COLORS,
    SOIL_COLORS,
    TREE_LUSH,
    WATER_COLORS,
    jitter,
)

TREE_GROUND = frozenset({GROUND, BARE, LAWN, TREE})  # trees may crowd each other, not roads
ROOF_HIP, ROOF_GABLE, ROOF_FLAT = range(3)
ROAD_CONCRETE, ROAD_ASPHALT, ROAD_DIRT = range(3)


def commit(scene: Scene, occ: Occupancy, trial: list[Feature]) -> list[Feature]:
    """Add features that were checked against ``occ`` with fresh uids, and mark them."""
    out = []
    for f in trial:
        attrs = {k: getattr(f, k) for k in ("radius", "color", "angle", "height", "style")}
        added = scene.add(f.kind, f.points, **attrs)
        occ.mark(added)
        out.append(added)
    return out


def _trial(kind: str, points: np.ndarray, **attrs: float | int | tuple[float, float, float]) -> Feature:
    return Feature(-1, kind, np.asarray(points, np.float64).reshape(-1, 2), **attrs)


def house_lot(scene: Scene, occ: Occupancy, rng: np.random.Generator, anchor: np.ndarray, angle: float,
              road_normal: np.ndarray | None = None, lawn: bool = True,
              allowed: frozenset[int] = OPEN_LAND, lot_width: float | None = None) -> list[Feature] | None:
    """A house with a hip or gable roof; facing a road it also gets a lawn and a driveway.

    Without ``road_normal``, ``anchor`` is the house centre. With it, ``anchor`` is a point on
    the road edge and ``road_normal`` the unit vector from the road towards the house.
    """
    lot_width = lot_width or scene.px(24)
    frontage = min(scene.px(rng.uniform(10, 17)), lot_width - scene.px(6))
    depth = scene.px(rng.uniform(9, 14))
    style = int(rng.choice([ROOF_HIP, ROOF_GABLE], p=[0.65, 0.35]))
    roof = jitter(rng, ROOF_COLORS[int(rng.choice(8, p=[0.3, 0.2, 0.12, 0.05, 0.1, 0.15, 0.03, 0.05]))])
    gap = scene.px(rng.uniform(5, 10)) if road_normal is not None else 0.0
    n = road_normal if road_normal is not None else np.zeros(2)
    centre = anchor + n * (gap + depth / 2)
    house = _trial("building", rect(*centre, depth, frontage, angle), color=roof, angle=angle,
                   height=rng.uniform(4, 7), style=style)
    trial = [house]
    if road_normal is not None:
        edge = scene.px(0.5)  # a strip of verge between the road and the lot
        lot_depth = gap + depth + scene.px(rng.uniform(3, 8)) - edge
        if lawn:
            lot = rect(*(anchor + n * (edge + lot_depth / 2)), lot_depth, lot_width - scene.px(0.6), angle)
            trial.insert(0, _trial("lawn", lot, color=jitter(rng, LAWN_GREEN, 0.08)))
        along = np.array([math.cos(angle), math.sin(angle)]) * rng.choice([-1, 1])
        start = centre - n * depth / 2 + along * (frontage / 2 - scene.px(2.5))
        length = gap + scene.px(1.5)  # reaches under the road edge so no verge shows between
        drive = rect(*(start - n * length / 2), scene.px(4), length, math.atan2(n[1], n[0]))
        trial.append(_trial("drive", drive, color=jitter(rng, ROAD_COLORS[ROAD_CONCRETE], 0.03)))
    for f in trial:
        if not occ.fits(f, allowed | {ROAD} if f.kind == "drive" else allowed):
            return None
    return commit(scene, occ, trial)


def big_building(scene: Scene, occ: Occupancy, rng: np.random.Generator, centre: np.ndarray, angle: float,
                 parking: bool, allowed: frozenset[int] = OPEN_LAND) -> list[Feature] | None:
    """A warehouse or block with a flat roof, optionally with a parking lot full of cars beside it."""
    length, width = scene.px(rng.uniform(25, 55)), scene.px(rng.uniform(18, 35))
    roof = jitter(rng, ROOF_COLORS[int(rng.choice([1, 2, 3, 6, 7]))])
    trial = [_trial("building", rect(*centre, width, length, angle), color=roof, angle=angle,
                    height=rng.uniform(6, 14), style=ROOF_FLAT)]
    if parking:
        normal = np.array([-math.sin(angle), math.cos(angle)]) * rng.choice([-1, 1])
        lot_w = scene.px(rng.uniform(14, 22))
        lot_c = centre + normal * (width / 2 + scene.px(2) + lot_w / 2)
        trial += parking_lot(scene, rng, lot_c, lot_w, length * rng.uniform(0.6, 1.0), angle)
    if not all(occ.fits(f, allowed) for f in trial if f.kind != "car"):
        return None
    return commit(scene, occ, trial)


def parking_lot(scene: Scene, rng: np.random.Generator, centre: np.ndarray, width: float, length: float,
                angle: float) -> list[Feature]:
    """Trial features of a lot (painted bays across ``length``) and the cars parked in its bays."""
    surface = jitter(rng, ROAD_COLORS[int(rng.choice([ROAD_CONCRETE, ROAD_ASPHALT]))], 0.04)
    out = [_trial("parking", rect(*centre, width, length, angle), color=surface, angle=angle)]
    along = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-along[1], along[0]])
    bay = scene.px(2.7)
    occupancy = rng.uniform(0.2, 0.8)
    for row in (-1, 1):  # two rows of bays, backs to the lot edges
        offset = across * row * (width / 2 - scene.px(2.7))
        for k in range(int(length / bay) - 1):
            if rng.random() < occupancy:
                c = centre + offset + along * (-length / 2 + bay * (k + 1))
                out.append(_trial("car", rect(*c, scene.px(1.8), scene.px(4.4), angle + math.pi / 2),
                                  color=jitter(rng, CAR_COLORS[int(rng.integers(5))], 0.04)))
    return out


def tree_clump(scene: Scene, occ: Occupancy, rng: np.random.Generator, centre: np.ndarray, count: int,
               spread_m: float, allowed: frozenset[int] = TREE_GROUND) -> list[Feature]:
    """Up to ``count`` round crowns scattered around ``centre``; those that hit anything are dropped."""
    radius = scene.px(rng.uniform(1.6, 4.5, count))
    pos = centre + rng.normal(0, scene.px(spread_m), (count, 2))
    lut = np.zeros(256, bool)
    lut[list(allowed)] = True
    # Vectorised fit test on five samples per crown (centre and four rim points): cheap and
    # good enough for objects this round; exact masks would cost a PIL draw per tree.
    probe = np.array([(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)])  # (5, 2)
    samples = pos[:, None] + probe[None] * radius[:, None, None]  # (count, 5, 2)
    xy = np.round(samples).astype(int)
    inside = ((xy >= 0) & (xy < occ.side)).all(-1)
    ok = inside.any(1)
    xy = xy.clip(0, occ.side - 1)
    ok &= (lut[occ.cls[xy[..., 1], xy[..., 0]]] | ~inside).all(1)
    trial = [
        _trial("tree", p, radius=r, color=jitter(rng, TREE_LUSH, 0.12), height=rng.uniform(4, 12))
        for p, r, good in zip(pos, radius, ok, strict=True)
        if good
    ]
    out = [scene.add(f.kind, f.points, radius=f.radius, color=f.color, height=f.height) for f in trial]
    occ.mark_all(out, over=OPEN_LAND | {LAWN})
    return out


def area(scene: Scene, occ: Occupancy, rng: np.random.Generator, kind: str, polygon: np.ndarray,
         allowed: frozenset[int] = OPEN_LAND, angle: float = 0.0) -> Feature | None:
    """A pond, bare patch or crop field over ``polygon``, if the ground under it is ``allowed``."""
    if kind == "pond":
        color, style = jitter(rng, WATER_COLORS[int(rng.integers(len(WATER_COLORS)))], 0.05), 0
    elif kind == "field":
        style = int(rng.integers(len(CROP_COLORS)))
        color = jitter(rng, CROP_COLORS[style], 0.05)
    else:  # bare: freshly scraped soil is brighter than the surrounding ground
        color, style = jitter(rng, SOIL_COLORS[int(rng.integers(len(SOIL_COLORS)))], 0.05), 0
    f = _trial(kind, polygon, color=color, angle=angle, style=style,
               radius=scene.px(rng.uniform(1.2, 3.0)) if kind == "field" else 0.0)
    if not occ.fits(f, allowed):
        return None
    return commit(scene, occ, [f])[0]


def pond_polygon(scene: Scene, rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    return blob(rng, *centre, scene.px(rng.uniform(7, 22)), rough=0.18)


def road(scene: Scene, occ: Occupancy, rng: np.random.Generator, line: np.ndarray, surface: int,
         allowed: frozenset[int] | None = None) -> Feature | None:
    """A road along polyline ``line``; widths follow the surface (dirt tracks are narrow)."""
    width_m = {ROAD_CONCRETE: (7, 11), ROAD_ASPHALT: (7, 13), ROAD_DIRT: (3, 5)}[surface]
    f = _trial("road", line, radius=scene.px(rng.uniform(*width_m)),
               color=jitter(rng, ROAD_COLORS[surface], 0.04), style=surface)
    if allowed is not None and not occ.fits(f, allowed):
        return None
    return commit(scene, occ, [f])[0]


def straight_line(rng: np.random.Generator, side: int, axis_aligned: bool) -> np.ndarray:
    """Two points of a line through the canvas, extended well past both edges."""
    angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.08) if axis_aligned else rng.uniform(0, math.pi)
    c = rng.uniform(0.15, 0.85, 2) * side
    d = np.array([math.cos(angle), math.sin(angle)]) * side * 1.5
    return np.stack([c - d, c + d])


def curved_line(rng: np.random.Generator, side: int) -> np.ndarray:
    """A quadratic Bezier from one canvas edge to another, sampled as a 16-point polyline."""
    def edge_point() -> np.ndarray:
        t, e = rng.uniform(0.1, 0.9) * side, int(rng.integers(4))
        return np.array([(t, -10), (side + 10, t), (t, side + 10), (-10, t)][e], np.float64)

    a, b = edge_point(), edge_point()
    while np.linalg.norm(a - b) < side * 0.6:
        b = edge_point()
    ctrl = rng.uniform(0.2, 0.8, 2) * side
    t = np.linspace(0, 1, 16)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b


def branch_line(rng: np.random.Generator, scene: Scene, main: Feature) -> tuple[np.ndarray, bool]:
    """A side road leaving ``main`` at right angles, and whether it continues across (a crossroad)."""
    pts = main.points
    seg = int(rng.integers(len(pts) - 1))
    a, b = pts[seg], pts[seg + 1]
    for _ in range(8):
        start = a + (b - a) * rng.uniform(0.1, 0.9)
        if (start >= 0).all() and (start < scene.side).all():
            break
    d = (b - a) / max(np.linalg.norm(b - a), 1e-9)
    normal = np.array([-d[1], d[0]]) * rng.choice([-1, 1])
    length = scene.px(rng.uniform(30, 90)) if rng.random() < 0.5 else scene.side * 1.5
    across = bool(rng.random() < 0.25)
    back = -normal * (scene.side * 1.5 if across else 0.0)
    return np.stack([start + back, start + normal * length]), across


def trees_hit(scene: Scene, feats: list[Feature]) -> set[int]:
    """uids of the trees whose crowns touch any of ``feats``: they get cut down."""
    box = union_box([bounds(f, scene.side) for f in feats])
    if box is None:
        return set()
    y0, x0, y1, x1 = box
    under = np.zeros((y1 - y0, x1 - x0), bool)  # the feats rasterised over their joint box
    for f in feats:
        lm = local_mask(f, scene.side)
        if lm is not None:
            fy, fx, m = lm
            under[fy - y0 : fy - y0 + m.shape[0], fx - x0 : fx - x0 + m.shape[1]] |= m
    hit: set[int] = set()
    for t in scene.of_kind("tree"):
        (cx, cy), r = t.points[0].tolist(), t.radius
        if cx + r < x0 or cx - r >= x1 or cy + r < y0 or cy - r >= y1:
            continue
        lm = local_mask(t, scene.side)
        if lm is None:
            continue
        ty, tx, m = lm
        # The crown's window intersected with the box, in both local frames.
        a0, b0, a1, b1 = max(ty, y0), max(tx, x0), min(ty + m.shape[0], y1), min(tx + m.shape[1], x1)
        if a1 > a0 and b1 > b0 and (under[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0]
                                    & m[a0 - ty : a1 - ty, b0 - tx : b1 - tx]).any():
            hit.add(t.uid)
    return hit


def trees_near_line(scene: Scene, line: np.ndarray, half_width: float) -> set[int]:
    trees = scene.of_kind("tree")
    if not trees:
        return set()
    centres = np.array([t.points[0] for t in trees])
    radii = np.array([t.radius for t in trees])
    close = polyline_distance(centres, line) < radii + half_width
    return {t.uid for t, c in zip(trees, close, strict=True) if c}

"""The first date of a pair: a random scene of one of a few land-use archetypes.

Object counts are densities per hectare, so a 4000 px canvas is a town of many blocks rather
than one block blown up. Roads go first (everything else is placed relative to them or away
from them), then areas, buildings, and trees last, since crowns may overlap each other.
"""

from __future__ import annotations

import math

import numpy as np

from hisem.data.synth import builders as b
from hisem.data.synth.scene import BARE, GROUND, LAWN, Feature, Occupancy, Scene, blob, rect
from hisem.data.synth.textures import SOIL_COLORS, jitter

# Archetype -> probability; LEVIR-CC is mostly suburbs growing over bare land.
ARCHETYPES = {"suburb": 0.35, "construction": 0.2, "rural": 0.18, "woodland": 0.14, "industrial": 0.13}
REFERENCE_M2 = 128.0 * 128.0  # one LEVIR-CC tile: the unit of the densities below


def _count(rng: np.random.Generator, per_tile: float, scale: float) -> int:
    return int(rng.poisson(per_tile * scale))


def _free_point(rng: np.random.Generator, occ: Occupancy, tries: int = 20) -> np.ndarray | None:
    for _ in range(tries):
        p = rng.uniform(0, occ.side, 2)
        if occ.cls[int(p[1]), int(p[0])] in (GROUND, BARE):
            return p
    return None


def houses_along(scene: Scene, occ: Occupancy, rng: np.random.Generator, road: Feature, fill: float,
                 lawn: bool, span: tuple[float, float] = (0.0, 1.0), sides: tuple[int, ...] = (-1, 1),
                 allowed: frozenset[int] = b.OPEN_LAND) -> list[tuple[int, list[Feature]]]:
    """House lots facing ``road`` between fractions ``span`` of its length: (side, lot features).

    ``fill`` is the chance that a lot gets a house, so rows come with gaps as in real suburbs.
    """
    pts = road.points
    seg_len = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    step = scene.px(rng.uniform(18, 24))
    lots: list[tuple[int, list[Feature]]] = []
    for s in np.arange(cum[-1] * span[0] + step / 2, cum[-1] * span[1], step):
        i = min(int(np.searchsorted(cum, s, side="right")) - 1, len(seg_len) - 1)
        tangent = (pts[i + 1] - pts[i]) / max(seg_len[i], 1e-9)
        p = pts[i] + tangent * (s - cum[i])
        if not (0 <= p[0] < scene.side and 0 <= p[1] < scene.side):
            continue
        angle = math.atan2(tangent[1], tangent[0])
        for side in sides:
            if rng.random() > fill:
                continue
            normal = np.array([-tangent[1], tangent[0]]) * side
            anchor = p + normal * (road.radius / 2)
            lot = b.house_lot(scene, occ, rng, anchor, angle, normal, lawn, allowed, lot_width=step)
            if lot:
                lots.append((side, lot))
    return lots


def _roads(scene: Scene, occ: Occupancy, rng: np.random.Generator, count: int, surface: int,
           branches: float) -> list[Feature]:
    roads: list[Feature] = []
    for _ in range(count):
        curved = rng.random() < 0.3
        line = b.curved_line(rng, scene.side) if curved else b.straight_line(rng, scene.side, True)
        main = b.road(scene, occ, rng, line, surface)
        if main is None:
            continue
        roads.append(main)
        for _ in range(rng.poisson(branches)):
            r = b.road(scene, occ, rng, b.branch_line(rng, scene, main)[0], surface)
            if r is not None:
                roads.append(r)
    return roads


def _areas(scene: Scene, occ: Occupancy, rng: np.random.Generator, kind: str, count: int) -> None:
    for _ in range(count):
        p = _free_point(rng, occ)
        if p is None:
            continue
        if kind == "pond":
            poly = b.pond_polygon(scene, rng, p)
        elif kind == "field":
            angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.1)
            poly = rect(*p, scene.px(rng.uniform(25, 70)), scene.px(rng.uniform(35, 110)), angle)
        else:
            poly = blob(rng, *p, scene.px(rng.uniform(10, 35)), rough=0.3)
        b.area(scene, occ, rng, kind, poly, angle=rng.uniform(0, math.pi) if kind == "field" else 0.0)


def _scattered(scene: Scene, occ: Occupancy, rng: np.random.Generator, houses: int, big: int,
               parking: float) -> None:
    angle0 = rng.uniform(0, math.pi)
    for _ in range(houses):
        p = _free_point(rng, occ)
        if p is not None:
            b.house_lot(scene, occ, rng, p, angle0 + rng.choice([0, math.pi / 2]) + rng.normal(0, 0.05))
    for _ in range(big):
        for _ in range(6):  # big footprints often hit something: try a few spots
            p = _free_point(rng, occ)
            if p is not None and b.big_building(scene, occ, rng, p, angle0 + rng.normal(0, 0.05),
                                                rng.random() < parking):
                break


def _trees(scene: Scene, occ: Occupancy, rng: np.random.Generator, clumps: int, per_clump: float,
           yard_trees: float) -> None:
    for _ in range(clumps):
        p = rng.uniform(0, scene.side, 2)
        b.tree_clump(scene, occ, rng, p, 1 + rng.poisson(per_clump), rng.uniform(4, 18))
    for lawn in scene.of_kind("lawn"):
        if rng.random() < yard_trees:
            b.tree_clump(scene, occ, rng, lawn.points.mean(axis=0), int(rng.integers(1, 3)), 4.0,
                         allowed=frozenset({LAWN, b.TREE}))


def random_scene(rng: np.random.Generator, side: int, gsd: float,
                 archetype: str | None = None) -> tuple[Scene, Occupancy]:
    """Lay out the first date on a ``side`` px canvas; returns the scene and its occupancy grid."""
    if archetype is None:
        archetype = str(rng.choice(list(ARCHETYPES), p=list(ARCHETYPES.values())))
    k = (side * gsd) ** 2 / REFERENCE_M2  # how many LEVIR-CC tiles this canvas holds
    g = {"suburb": (-0.5, 0.4), "construction": (-1.0, -0.3), "rural": (-0.1, 0.7), "woodland": (0.0, 0.8),
         "industrial": (-0.9, 0.0)}[archetype]
    scene = Scene(side, gsd, float(rng.uniform(*g)), jitter(rng, SOIL_COLORS[int(rng.integers(4))], 0.04))
    occ = Occupancy(side)
    # Main roads cross the canvas: their number grows with its side, not its area.
    side_k = math.sqrt(k)
    main = _count(rng, 0.6, side_k) if archetype == "woodland" else max(1, _count(rng, 1.0, side_k))
    if archetype == "suburb":
        roads = _roads(scene, occ, rng, main, int(rng.choice([0, 1], p=[0.8, 0.2])), 1.0)
        for r in roads:
            houses_along(scene, occ, rng, r, rng.uniform(0.5, 0.95), lawn=True)
        _areas(scene, occ, rng, "bare", _count(rng, 0.6, k))
        _areas(scene, occ, rng, "pond", _count(rng, 0.2, k))  # retention ponds
        _scattered(scene, occ, rng, _count(rng, 1.0, k), 0, 0.0)
        _trees(scene, occ, rng, _count(rng, 3.0, k), 5, 0.5)
    elif archetype == "construction":
        roads = _roads(scene, occ, rng, main, int(rng.choice([0, 2], p=[0.7, 0.3])), 0.8)
        for r in roads:
            if rng.random() < 0.4:
                houses_along(scene, occ, rng, r, rng.uniform(0.2, 0.6), lawn=rng.random() < 0.5)
        _areas(scene, occ, rng, "bare", _count(rng, 1.5, k))
        _scattered(scene, occ, rng, _count(rng, 0.7, k), _count(rng, 0.2, k), 0.3)
        _trees(scene, occ, rng, _count(rng, 2.5, k), 4, 0.2)
    elif archetype == "rural":
        _roads(scene, occ, rng, main, b.ROAD_DIRT if rng.random() < 0.6 else b.ROAD_ASPHALT, 0.3)
        _areas(scene, occ, rng, "field", 1 + _count(rng, 2.5, k))
        _areas(scene, occ, rng, "pond", _count(rng, 0.4, k))
        _scattered(scene, occ, rng, _count(rng, 1.2, k), _count(rng, 0.2, k), 0.0)
        _trees(scene, occ, rng, _count(rng, 4.0, k), 8, 0.0)
    elif archetype == "woodland":
        _roads(scene, occ, rng, main, b.ROAD_DIRT, 0.3)
        _areas(scene, occ, rng, "pond", _count(rng, 0.5, k))
        _scattered(scene, occ, rng, _count(rng, 0.5, k), 0, 0.0)
        _trees(scene, occ, rng, _count(rng, 14.0, k), 14, 0.0)
    else:  # industrial
        _roads(scene, occ, rng, main, b.ROAD_ASPHALT, 0.4)
        _scattered(scene, occ, rng, 0, 1 + _count(rng, 2.0, k), 0.7)
        _areas(scene, occ, rng, "bare", _count(rng, 1.0, k))
        _trees(scene, occ, rng, _count(rng, 2.0, k), 4, 0.0)
    return scene, occ

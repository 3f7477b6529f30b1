"""Change events: the edits that turn the first date's scene into the second's.

Each event function gets an Editor on a copy of the scene, places or removes objects through
the same builders as the layout, and returns the events it made (none if it found no room: the
copy is then dropped). Events only touch the image window, so they can be seen and captioned.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from hisem.data.synth import builders as b
from hisem.data.synth.change import ChangeEvent, Editor, make_event
from hisem.data.synth.layout import houses_along
from hisem.data.synth.scene import (
    BARE,
    DRIVE,
    FIELD,
    GROUND,
    LAWN,
    OPEN_LAND,
    ROAD,
    TREE,
    Feature,
    Occupancy,
    Scene,
    blob,
    local_mask,
    point_at,
    polyline_length,
    tangent_at,
)

ANY = frozenset(range(256))
BUILDABLE = OPEN_LAND | {TREE}  # construction may cut trees down


def _houses_event(ed: Editor, new: list[Feature], **extra: object) -> list[ChangeEvent]:
    """The event of buildings just placed (with their lots), cutting down the trees under them."""
    houses = [f for f in new if f.kind == "building"]
    cut = ed.cut_trees_under(new) if houses else None
    if cut is None:
        return []
    detail = "big" if any(h.style == b.ROOF_FLAT for h in houses) else "house"
    if any(f.kind == "parking" for f in new):
        detail += "+parking"
    return [make_event("buildings_built", new, cut, houses, detail=detail, trees_cut=len(cut), **extra)]


def build_houses(ed: Editor) -> list[ChangeEvent]:
    """Houses along a paved road (one or both sides), a small group of houses, or one big building."""
    rng, sc = ed.rng, ed.scene
    roads = [r for r in sc.of_kind("road") if r.style != b.ROAD_DIRT]
    if roads and rng.random() < 0.6:
        road = roads[int(rng.integers(len(roads)))]
        length = float(np.linalg.norm(np.diff(road.points, axis=0), axis=1).sum())
        span = min(sc.px(rng.uniform(30, 100)) / length, 1.0)
        for _ in range(10):
            t0 = rng.uniform(0, 1 - span)
            mid = point_at(road.points, t0 + span / 2)
            if ed.inside(mid, sc.px(10)):
                break
        else:
            return []
        sides = (-1, 1) if rng.random() < 0.4 else (int(rng.choice([-1, 1])),)
        lots = houses_along(sc, ed.occ, rng, road, 0.9, rng.random() < 0.7, (t0, t0 + span), sides, BUILDABLE)
        new = [f for _, lot in lots for f in lot]
        both = len({s for s, _ in lots}) == 2
        return _houses_event(ed, new, along_road=True, both_sides=both)
    p = ed.point(BUILDABLE)
    if p is None:
        return []
    angle = float(rng.uniform(0, math.pi))
    if rng.random() < 0.75:  # a compact group of houses on a grid
        n = int(rng.choice([1, 2, 3, 4, 5, 6], p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05]))
        cols, step = int(rng.integers(1, 4)), sc.px(rng.uniform(18, 26))
        u, v = np.array([math.cos(angle), math.sin(angle)]), np.array([-math.sin(angle), math.cos(angle)])
        new = []
        for j in range(n):
            c = p + u * step * (j % cols) + v * step * (j // cols)
            new += b.house_lot(sc, ed.occ, rng, c, angle, allowed=BUILDABLE) or []
    else:
        new = b.big_building(sc, ed.occ, rng, p, angle, rng.random() < 0.5, BUILDABLE) or []
    return _houses_event(ed, new)


def demolish(ed: Editor) -> list[ChangeEvent]:
    """One to four neighbouring buildings pulled down; their plots become cleared soil."""
    rng = ed.rng
    cands = ed.visible("building")
    if not cands:
        return []
    seed = cands[int(rng.integers(len(cands)))].points.mean(axis=0)
    n = int(rng.choice([1, 2, 3, 4], p=[0.5, 0.25, 0.15, 0.1]))
    near = sorted(cands, key=lambda f: float(np.linalg.norm(f.points.mean(axis=0) - seed)))
    gone = [f for f in near[:n] if np.linalg.norm(f.points.mean(axis=0) - seed) < ed.scene.px(45)]
    ed.scene.remove({f.uid for f in gone})
    added = []
    for f in gone:  # the cleared plot is a little larger than the house was
        c = f.points.mean(axis=0)
        lot = c + (f.points - c) * 1.15
        added.append(b.area(ed.scene, ed.occ, rng, "cleared", lot, allowed=ANY))
    detail = "big" if any(f.style == b.ROOF_FLAT for f in gone) else "house"
    return [make_event("buildings_demolished", [a for a in added if a], {f.uid for f in gone}, gone,
                   detail=detail)]


def build_road(ed: Editor) -> list[ChangeEvent]:
    """A branch off a road (T-junction or crossroad) or a new straight/curved road; often with houses."""
    rng, sc = ed.rng, ed.scene
    roads = sc.of_kind("road")
    surface = roads[0].style if roads else int(rng.choice([b.ROAD_CONCRETE, b.ROAD_ASPHALT, b.ROAD_DIRT]))
    for _ in range(6):
        if roads and rng.random() < 0.6:
            line, across = b.branch_line(rng, sc, roads[int(rng.integers(len(roads)))])
            detail = "cross" if across else "branch"
        elif rng.random() < 0.4:
            line, detail = b.curved_line(rng, sc.side), "curved"
        else:
            line, detail = b.straight_line(rng, sc.side, rng.random() < 0.7), "straight"
        dense = np.concatenate([np.linspace(p, q, 20) for p, q in zip(line[:-1], line[1:], strict=True)])
        if not any(ed.inside(p, sc.px(8)) for p in dense):
            continue
        before = ed.occ.copy()
        road = b.road(sc, ed.occ, rng, line, surface, allowed=OPEN_LAND | {TREE, FIELD, ROAD})
        if road is not None:
            break
    else:
        return []
    under = before.cover(road)
    if under is None or (under == ROAD).mean() > 0.25:
        return []  # mostly on top of an existing road: no visible new road
    if detail in ("straight", "curved") and (under == ROAD).any():
        detail = "cross"  # running over an older road makes a crossroad
    cut = b.trees_near_line(sc, line, road.radius / 2)
    if any(uid >= ed.first_new for uid in cut):
        return []
    sc.remove(cut)
    events = [make_event("road_built", [road], cut, [road], detail=detail, surface=surface,
                         trees_cut=len(cut))]
    if surface != b.ROAD_DIRT and rng.random() < 0.45:  # the new road brings its houses
        lots = houses_along(sc, ed.occ, rng, road, 0.85, rng.random() < 0.6, allowed=BUILDABLE)
        both = len({s for s, _ in lots}) == 2
        events += _houses_event(ed, [f for _, lot in lots for f in lot], along_road=True,
                                both_sides=both)
    return events


def cut_trees(ed: Editor) -> list[ChangeEvent]:
    """Most trees of one clump cut down."""
    rng = ed.rng
    trees = ed.visible("tree")
    if not trees:
        return []
    seed = trees[int(rng.integers(len(trees)))].points[0]
    radius = ed.scene.px(rng.uniform(6, 30))
    group = [t for t in trees if np.linalg.norm(t.points[0] - seed) < radius]
    share = rng.uniform(0.6, 1.0)  # a few trees of the clump may be spared
    gone = {t.uid for t in group if rng.random() < share} or {group[0].uid}
    ed.scene.remove(gone)
    return [make_event("trees_removed", [], gone, gone, detail="woods" if len(gone) >= 8 else "")]


def plant_trees(ed: Editor) -> list[ChangeEvent]:
    """A clump of young trees, or a row of street trees along a road."""
    rng, sc = ed.rng, ed.scene
    roads = [r for r in sc.of_kind("road") if ed.inside(r.points.mean(axis=0))]
    along = bool(roads) and rng.random() < 0.3
    if along:  # a row of street trees on one verge
        road = roads[int(rng.integers(len(roads)))]
        t0, side = rng.uniform(0, 0.6), rng.choice([-1, 1])
        new = []
        for t in np.arange(t0, t0 + 0.4, sc.px(rng.uniform(7, 11)) / polyline_length(road.points)):
            p, tangent = point_at(road.points, t), tangent_at(road.points, t)
            normal = np.array([-tangent[1], tangent[0]]) * side
            if ed.inside(p):
                new += b.tree_clump(sc, ed.occ, rng, p + normal * (road.radius / 2 + sc.px(3)), 1, 0.0,
                                    allowed=OPEN_LAND | {LAWN})
    else:
        p = ed.point(OPEN_LAND | {LAWN})
        if p is None:
            return []
        new = b.tree_clump(sc, ed.occ, rng, p, int(rng.integers(2, 16)), rng.uniform(3, 10),
                           allowed=OPEN_LAND | {LAWN})
    return [make_event("trees_planted", new, set(), new, along_road=along)] if new else []


def clear_land(ed: Editor) -> list[ChangeEvent]:
    """A patch of grass or woods scraped to bare soil."""
    rng, sc = ed.rng, ed.scene
    for _ in range(20):
        p = ed.point(frozenset({GROUND, TREE, LAWN}))
        if p is None:
            return []
        poly = blob(rng, *p, sc.px(rng.uniform(10, 28)), rough=0.3)
        lm = local_mask(Feature(-1, "cleared", poly), sc.side)
        if lm is None:
            continue
        y0, x0, m = lm
        cls = ed.occ.cls[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]][m]
        veg = ed.veg[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]][m]
        green = (cls == TREE) | (cls == LAWN) | ((cls == GROUND) & (veg > 0.5))
        if green.mean() > 0.7:  # clearing must remove something green, or nothing shows
            break
    else:
        return []
    new = b.area(sc, ed.occ, rng, "cleared", poly, allowed=frozenset({GROUND, BARE, TREE, LAWN, ROAD, DRIVE}))
    cut = ed.cut_trees_under([new]) if new else None
    if new is None or cut is None:
        return []
    return [make_event("land_cleared", [new], cut, [new], detail="trees" if len(cut) >= 3 else "grass",
                   trees_cut=len(cut))]


def dig_pond(ed: Editor) -> list[ChangeEvent]:
    """A new pond on open land (or in the woods, cutting trees)."""
    p = ed.point(BUILDABLE)
    new = b.area(ed.scene, ed.occ, ed.rng, "pond", b.pond_polygon(ed.scene, ed.rng, p), BUILDABLE) if (
        p is not None) else None
    cut = ed.cut_trees_under([new]) if new else None
    if new is None or cut is None:
        return []
    return [make_event("pond_dug", [new], cut, [new], trees_cut=len(cut))]


def _replace_area(ed: Editor, kind: str) -> tuple[Feature, Feature] | None:
    """Swap an old area of ``kind`` inside the image for cleared soil of the same outline."""
    cands = ed.visible(kind)
    if not cands:
        return None
    old = cands[int(ed.rng.integers(len(cands)))]
    ed.scene.remove({old.uid})
    new = b.area(ed.scene, ed.occ, ed.rng, "cleared", old.points, allowed=ANY)
    return (old, new) if new else None


def fill_pond(ed: Editor) -> list[ChangeEvent]:
    """An old pond filled in with soil."""
    swap = _replace_area(ed, "pond")
    return [make_event("pond_filled", [swap[1]], {swap[0].uid}, {swap[0].uid})] if swap else []


def convert_field(ed: Editor) -> list[ChangeEvent]:
    """A crop field cleared to bare soil, or cleared and built over with houses."""
    swap = _replace_area(ed, "field")
    if swap is None:
        return []
    old, cleared = swap
    if ed.rng.random() < 0.5:
        return [make_event("field_to_bare", [cleared], {old.uid}, {old.uid})]
    # Houses on a grid aligned with the field's edges (fields are rectangles, see layout).
    c = old.points.mean(axis=0)
    u = (old.points[0] - old.points[1]) / 2
    v = (old.points[1] - old.points[2]) / 2
    step = ed.scene.px(ed.rng.uniform(18, 26))
    angle = math.atan2(u[1], u[0])
    new: list[Feature] = []
    nu, nv = int(np.linalg.norm(u) * 2 // step), int(np.linalg.norm(v) * 2 // step)
    for i in range(nu):
        for j in range(nv):
            p = c + u * ((i + 0.5) / nu * 2 - 1) + v * ((j + 0.5) / nv * 2 - 1)
            if ed.rng.random() < 0.8:
                new += b.house_lot(ed.scene, ed.occ, ed.rng, p, angle, allowed=frozenset({BARE})) or []
    if not new:
        return []
    houses = [f for f in new if f.kind == "building"]
    return [make_event("field_to_buildings", [cleared, *new], {old.uid}, houses, detail="house")]


def build_parking(ed: Editor) -> list[ChangeEvent]:
    """A parking lot with parked cars beside a paved road."""
    rng, sc = ed.rng, ed.scene
    roads = [r for r in sc.of_kind("road") if r.style != b.ROAD_DIRT]
    if not roads:
        return []
    road = roads[int(rng.integers(len(roads)))]
    for _ in range(10):
        t = rng.uniform(0, 1)
        p, tangent = point_at(road.points, t), tangent_at(road.points, t)
        if ed.inside(p, sc.px(15)):
            break
    else:
        return []
    normal = np.array([-tangent[1], tangent[0]]) * rng.choice([-1, 1])
    width, length = sc.px(rng.uniform(14, 20)), sc.px(rng.uniform(20, 45))
    centre = p + normal * (road.radius / 2 + sc.px(2) + width / 2)
    trial = b.parking_lot(sc, rng, centre, width, length, math.atan2(tangent[1], tangent[0]))
    if not ed.occ.fits(trial[0], OPEN_LAND):
        return []
    new = b.commit(sc, ed.occ, trial)
    return [make_event("parking_built", new, set(), [new[0]], along_road=True)]


EVENTS: dict[Callable[[Editor], list[ChangeEvent]], float] = {
    # Weights of the draw; events that find nothing to act on (no field to convert...) are
    # redrawn, so the rarer scene contents get larger weights.
    build_houses: 0.30,
    build_road: 0.13,
    cut_trees: 0.11,
    demolish: 0.08,
    clear_land: 0.07,
    plant_trees: 0.06,
    convert_field: 0.12,
    dig_pond: 0.05,
    fill_pond: 0.06,
    build_parking: 0.05,
}


def apply_events(scene: Scene, occ: Occupancy, rng: np.random.Generator, veg: np.ndarray,
                 roi: tuple[float, float], wanted: int) -> tuple[Scene, list[ChangeEvent]]:
    """The second date: ``scene`` after up to ``wanted`` events (each tried on a copy first)."""
    after, occ = scene.copy(), occ.copy()
    fns, weights = list(EVENTS), np.array(list(EVENTS.values()))
    events: list[ChangeEvent] = []
    for _ in range(4 * wanted + 8):
        if len(events) >= wanted:
            break
        fn = fns[int(rng.choice(len(fns), p=weights / weights.sum()))]
        trial = Editor(after.copy(), occ.copy(), rng, veg, roi, scene.next_uid)
        new = fn(trial)
        if new:
            after, occ = trial.scene, trial.occ
            events += new
    return after, events

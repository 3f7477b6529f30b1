"""What a change event is, and the editor through which events change a scene.

Each event records the uids it added and removed; the change mask is then exactly the pixels
whose visible object differs between the dates (pair.py), and each event's footprint is the
part of it due to that event's uids. Events never remove what an earlier event of the same
pair added, so footprints and counts stay attributable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hisem.data.synth.builders import trees_hit
from hisem.data.synth.scene import Box, Feature, Occupancy, Scene


@dataclass(frozen=True)
class ChangeEvent:
    """One change between the dates, as captions describe it.

    ``subjects`` are the uids a caption counts ("two houses"): added for built/planted/dug
    events, removed for demolished/cut/filled ones. The last four fields are filled in by
    pair.py once both dates are rendered and cropped.
    """

    kind: str
    added: frozenset[int]
    removed: frozenset[int]
    subjects: frozenset[int]
    along_road: bool = False
    both_sides: bool = False
    detail: str = ""  # kind-specific: "big"/"house", road "cross"/"branch"/"curved"/..., "trees"
    surface: int = -1  # roads: builders.ROAD_*
    trees_cut: int = 0
    on: str | None = None  # the land before: "bare", "grass", "trees", "field"
    count: int = 0  # subjects visible in the image
    place: tuple[str | None, str | None] = (None, None)  # (row, col) thirds, None = spread
    # The changed pixels due to this event: a bool window at ``box`` of the image (not the
    # whole image: a 4000 px town has hundreds of events).
    box: Box = (0, 0, 0, 0)
    footprint: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def pixels(self) -> int:
        return 0 if self.footprint is None else int(np.count_nonzero(self.footprint))

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The footprint as a full (H, W) bool image."""
        out = np.zeros(shape, bool)
        if self.footprint is not None:
            y0, x0, y1, x1 = self.box
            out[y0:y1, x0:x1] = self.footprint
        return out


@dataclass
class Editor:
    """The scene being edited, with what the events need to place things inside the image."""

    scene: Scene
    occ: Occupancy
    rng: np.random.Generator
    veg: np.ndarray  # grass cover of the open ground, canvas-sized
    roi: tuple[float, float]  # image window [lo, hi) in canvas px, both axes
    first_new: int  # uids >= this were added by an earlier event of this pair

    def inside(self, p: np.ndarray, inset: float = 0.0) -> bool:
        lo, hi = self.roi
        return bool((p >= lo + inset).all() and (p < hi - inset).all())

    def point(self, classes: frozenset[int], tries: int = 30) -> np.ndarray | None:
        """A random point inside the image on one of ``classes``."""
        lo, hi = self.roi
        for _ in range(tries):
            p = self.rng.uniform(lo, hi, 2)
            if self.occ.cls[int(p[1]), int(p[0])] in classes:
                return p
        return None

    def visible(self, kind: str) -> list[Feature]:
        """Old features of ``kind`` centred inside the image: candidates to remove."""
        return [f for f in self.scene.of_kind(kind) if f.uid < self.first_new
                and self.inside(f.points.mean(axis=0))]

    def cut_trees_under(self, feats: list[Feature]) -> set[int] | None:
        """Remove the old trees under ``feats``; None (event refused) if a new tree is in the way."""
        hit = trees_hit(self.scene, feats)
        if any(uid >= self.first_new for uid in hit):
            return None
        self.scene.remove(hit)
        return hit


def make_event(kind: str, added: list[Feature], removed: set[int], subjects: list[Feature] | set[int],
           **extra: object) -> ChangeEvent:
    subj = {f.uid for f in subjects} if isinstance(subjects, list) else subjects
    return ChangeEvent(kind, frozenset(f.uid for f in added), frozenset(removed), frozenset(subj), **extra)

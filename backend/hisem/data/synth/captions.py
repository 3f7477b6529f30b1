"""Five LEVIR-CC-style captions per pair, generated from its change events.

Phrasings are copied from LEVIR-CC's own captions (counts "a / two / several / many", places
"at the top left / in the middle", verbs "are built / appear / are removed") and use only words
of its 501-word vocabulary, so a model trained here decodes into the same words as on real
data. Every clause is true of one event: its counts, places and context come from the event's
rendered footprint, not from what the generator intended.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hisem.data.synth.builders import ROAD_ASPHALT, ROAD_CONCRETE, ROAD_DIRT
from hisem.data.synth.change import ChangeEvent

# LEVIR-CC gives every unchanged pair these five, in this order; the third defines changeflag 0.
NO_CHANGE = (
    "there is no difference",
    "the two scenes seem identical",
    "the scene is the same as before",
    "no change has occurred",
    "almost nothing has changed",
)
SAME_AS_BEFORE = NO_CHANGE[2]
MAX_WORDS = 30  # well inside the decoder's 41 tokens with <START> and <END>

_CORNER = {
    ("top", "left"): "upper left", ("top", "right"): "upper right",
    ("bottom", "left"): "lower-left", ("bottom", "right"): "lower-right",
}  # fmt: skip
PLACES: dict[tuple[str | None, str | None], tuple[str, ...]] = {}
for (_row, _col), _corner in _CORNER.items():
    PLACES[(_row, _col)] = (
        f"at the {_row} {_col}", f"in the {_corner} corner", f"at the {_row} {_col} corner of the scene",
        f"in the {_row} {_col} corner", f"on the {_corner}",
    )  # fmt: skip
for _row in ("top", "bottom"):
    _phr = (f"at the {_row}", f"at the {_row} of the scene", f"on the {_row} side of the scene",
            f"in the {'upper' if _row == 'top' else 'lower'} part of the scene")
    PLACES[(_row, "middle")] = PLACES[(_row, None)] = _phr
for _col in ("left", "right"):
    _phr = (f"on the {_col}", f"on the {_col} side", f"on the {_col} side of the scene",
            f"in the {_col} part of the scene")
    PLACES[("middle", _col)] = PLACES[(None, _col)] = _phr
PLACES[("middle", "middle")] = PLACES[("middle", None)] = PLACES[(None, "middle")] = (
    "in the middle", "in the center", "in the middle of the scene", "in the center of the scene",
)  # fmt: skip

ON = {
    "bare": ("on the bareland", "on the bare land", "in the open space", "on the wasteland"),
    "grass": ("on the grassland", "on the meadow", "on the grass"),
    "trees": ("in the woods", "in the forest", "among the trees"),
    "field": ("on the field", "in the field"),
}
LAND = {  # the land as a subject: (words, plural)
    "bare": (("the bareland", False), ("the bare land", False), ("the open space", False)),
    "grass": (("the grassland", False), ("the meadow", False), ("the grass", False)),
    "trees": (("the woods", True), ("some trees", True), ("the trees", True)),
    "field": (("the field", False),),
}
ALONG = ("along the road", "beside the road", "near the road", "next to the road", "by the road")
BOTH_SIDES = ("on both sides of the road", "along both sides of the road")
NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}

# Verb phrases as (singular, plural).
BUILT = (("is built", "are built"), ("has been built", "have been built"),
         ("is constructed", "are constructed"), ("appears", "appear"), ("has appeared", "have appeared"),
         ("shows up", "show up"), ("is erected", "are erected"), ("is added", "are added"))
GONE = (("is demolished", "are demolished"), ("has been demolished", "have been demolished"),
        ("is removed", "are removed"), ("disappears", "disappear"), ("has disappeared", "have disappeared"),
        ("is pulled down", "are pulled down"), ("has been pulled down", "have been pulled down"))
CUT = (("is removed", "are removed"), ("is cut down", "are cut down"), ("disappears", "disappear"),
       ("has been removed", "have been removed"), ("has been cut down", "have been cut down"),
       ("has disappeared", "have disappeared"))
PLANTED = (("is planted", "are planted"), ("appears", "appear"), ("has been planted", "have been planted"),
           ("grows", "grow"))
APPEARS = (("appears", "appear"), ("has appeared", "have appeared"), ("shows up", "show up"),
           ("has formed", "have formed"))
HOUSE = (("house", "houses"), ("building", "buildings"), ("villa", "villas"), ("house", "houses"),
         ("bungalow", "bungalows"))
ROAD_NOUNS = {
    ROAD_DIRT: ("road", "path", "dirt road"),
    ROAD_CONCRETE: ("road", "road", "cement road", "concrete road"),
    ROAD_ASPHALT: ("road", "road", "asphalt road"),
}
ROAD_ADJECTIVES = {"curved": ("curved ", "new ", ""), "straight": ("straight ", "new ", "")}
BIG = (("large building", "large buildings"), ("big building", "big buildings"), ("building", "buildings"),
       ("warehouse", "warehouses"), ("huge building", "huge buildings"))


class _Say:
    """Random choices for one caption, bound to one generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def maybe(self, p: float, text: str) -> str:
        return text if self.rng.random() < p else ""

    def verb(self, table: Sequence[tuple[str, str]], plural: bool) -> str:
        return table[int(self.rng.integers(len(table)))][plural]

    def place(self, ev: ChangeEvent, p: float = 0.6) -> str:
        phrases = PLACES.get(ev.place)
        return self.pick(phrases) if phrases and self.rng.random() < p else ""

    def on(self, ev: ChangeEvent, p: float = 0.45) -> str:
        return self.pick(ON[ev.on]) if ev.on in ON and self.rng.random() < p else ""

    def along(self, ev: ChangeEvent, p: float = 0.7) -> str:
        if not ev.along_road or self.rng.random() > p:
            return ""
        return self.pick(BOTH_SIDES if ev.both_sides and self.rng.random() < 0.6 else ALONG)

    def count(self, n: int, nouns: tuple[str, str], new: bool = False) -> str:
        """"a house", "two new houses", "several buildings", "many villas"."""
        adj = "new " if new and self.rng.random() < 0.25 else ""
        if n == 1:
            words = adj + nouns[0]
            return ("an " if words[0] in "aeiou" else "a ") + words
        if n == 2:
            det = "two"
        elif n <= 4:
            det = self.pick((NUMBERS[n], "several", "some", "a few"))
        elif n <= 6:
            det = self.pick((NUMBERS[n], "several", "some"))
        else:
            det = self.pick(("many", "some", "lots of", "a lot of", "many"))
        return f"{det} {adj}{nouns[1]}"


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _buildings(s: _Say, ev: ChangeEvent) -> str:
    nouns = s.pick(BIG if ev.detail.startswith("big") else HOUSE)  # type: ignore[arg-type]
    n = ev.count
    if ev.along_road and n >= 3 and s.rng.random() < 0.4:
        subject, plural = (("two rows of " if ev.both_sides else "a row of ") + nouns[1]), ev.both_sides
    else:
        subject, plural = s.count(n, nouns, new=True), n > 1
    if ev.detail.endswith("+parking") and s.rng.random() < 0.6:
        subject += " with a parking lot"
    land = LAND.get(ev.on or "") if ev.kind == "buildings_built" or ev.on == "field" else None
    if land and s.rng.random() < 0.25:
        words, land_plural = land[int(s.rng.integers(len(land)))]
        return _join(words, s.place(ev, 0.4), "are" if land_plural else "is", "replaced by", subject)
    clause = _join(subject, s.verb(BUILT, plural), s.along(ev), s.on(ev), s.place(ev))
    if ev.trees_cut >= 3 and s.rng.random() < 0.3:
        clause = _join(clause, "replacing some trees") if s.rng.random() < 0.5 else _join(
            s.pick(("some trees are removed and", "trees are cut down and")), clause)
    return clause


def _demolished(s: _Say, ev: ChangeEvent) -> str:
    nouns = s.pick(BIG if ev.detail == "big" else HOUSE)  # type: ignore[arg-type]
    if ev.count == 1 and s.rng.random() < 0.3:
        subject = _join("the", nouns[0], s.place(ev, 1.0))
        return _join(subject, s.verb(GONE, False))
    return _join(s.count(ev.count, nouns), s.verb(GONE, ev.count > 1), s.place(ev))


def _road(s: _Say, ev: ChangeEvent) -> str:
    adjective = s.pick(ROAD_ADJECTIVES.get(ev.detail, ("new ", "")))
    words = adjective + s.pick(ROAD_NOUNS.get(ev.surface, ("road",)))
    subject = ("an " if words[0] in "aeiou" else "a ") + words
    tail = ""
    if ev.detail == "cross" and s.rng.random() < 0.5:
        if s.rng.random() < 0.5:
            return _join("a crossroad", s.verb(APPEARS[:3], False), s.place(ev))
        tail = s.pick(("crossing the original road", "crossing the old road"))
    elif ev.detail == "branch" and s.rng.random() < 0.5:
        if s.rng.random() < 0.4:
            subject = s.pick(("a t-junction", "a branch of the road"))
            return _join(subject, s.verb(APPEARS[:3], False), s.place(ev))
        tail = s.pick(("connecting to the main road", "connected to the original road"))
    where = s.place(ev) or (s.maybe(0.5, "across the scene") if ev.place == (None, None) else "")
    in_woods = ev.on == "trees" or ev.trees_cut >= 4
    woods = s.pick(("across the woods", "in the woods", "through the forest")) if in_woods else s.on(ev)
    clause = _join(subject, s.verb(BUILT[:6], False), tail or woods, where)
    if ev.trees_cut >= 3 and not in_woods and s.rng.random() < 0.3:
        clause = _join("some trees are removed and", clause)
    return clause


def _trees_removed(s: _Say, ev: ChangeEvent) -> str:
    n = ev.count
    if n >= 8 and s.rng.random() < 0.4:
        subject = s.pick(("part of the woods", "the vegetation", "the woods", "a group of trees"))
        verb = "are cleared" if subject == "the woods" else "is cleared"
        where = s.place(ev)
        return _join(subject, where, verb) if s.rng.random() < 0.5 else _join(subject, verb, where)
    return _join(s.count(n, ("tree", "trees")), s.verb(CUT, n > 1), s.place(ev))


def _trees_planted(s: _Say, ev: ChangeEvent) -> str:
    n = ev.count
    if ev.along_road and n >= 3 and s.rng.random() < 0.5:
        return _join("a row of trees", s.verb(PLANTED[:3], False), s.pick(ALONG), s.place(ev, 0.4))
    if n >= 3 and s.rng.random() < 0.2:
        return _join("more trees appear", s.along(ev), s.place(ev))
    return _join(s.count(n, ("tree", "trees"), new=True), s.verb(PLANTED, n > 1), s.along(ev), s.place(ev))


def _land_cleared(s: _Say, ev: ChangeEvent) -> str:
    where = s.place(ev)
    if ev.detail == "trees":
        return s.pick((_join("the woods", where, "are cleared"), _join("part of the woods is cleared", where),
                       _join("the vegetation", where, "is cleared"), _join("the forest", where, "is cleared"),
                       _join("some trees are cut down and the ground is leveled", where)))
    return s.pick((_join("the grass", where, "becomes bareland"),
                   _join("the grassland", where, "turns into bareland"),
                   _join("the vegetation", where, "is removed"), _join("a piece of land is cleared", where),
                   _join("the ground", where, "is leveled"), _join("the meadow", where, "is cleared")))


def _pond_dug(s: _Say, ev: ChangeEvent) -> str:
    subject = s.pick(("a pond", "a small pond", "a lake", "a new pond", "a small lake"))
    return _join(subject, s.verb(APPEARS, False), s.on(ev), s.place(ev))


def _pond_filled(s: _Say, ev: ChangeEvent) -> str:
    noun, where = s.pick(("the pond", "the lake")), s.place(ev)
    return s.pick((_join(noun, where, "is filled"), _join(noun, where, "has been filled"),
                   _join(noun, where, "is filled up"), _join("a pond disappears", where),
                   _join(noun, where, "becomes bareland"), _join(noun, where, "has dried up")))


def _field_to_bare(s: _Say, ev: ChangeEvent) -> str:
    where = s.place(ev)
    return s.pick((_join("the field", where, "becomes bareland"), _join("the field", where, "is cleared"),
                   _join("the field", where, "turns into bare land"),
                   _join("the field", where, "is transformed into bareland"),
                   _join("a field disappears", where)))


def _field_to_buildings(s: _Say, ev: ChangeEvent) -> str:
    if ev.count >= 3 and s.rng.random() < 0.25:
        return _join("the field", s.place(ev), "is turned into a residential area")
    return _buildings(s, ev)


def _parking(s: _Say, ev: ChangeEvent) -> str:
    subject = s.pick(("a parking lot", "a new parking lot", "a parking lot with some cars"))
    return _join(subject, s.verb(BUILT[:6], False), s.along(ev), s.place(ev))


CLAUSES = {
    "buildings_built": _buildings,
    "buildings_demolished": _demolished,
    "road_built": _road,
    "trees_removed": _trees_removed,
    "trees_planted": _trees_planted,
    "land_cleared": _land_cleared,
    "pond_dug": _pond_dug,
    "pond_filled": _pond_filled,
    "field_to_bare": _field_to_bare,
    "field_to_buildings": _field_to_buildings,
    "parking_built": _parking,
}


def captions(events: Sequence[ChangeEvent], rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` different captions (words separated by single spaces, no final period)."""
    if not events:
        return list(NO_CHANGE)
    # The biggest change leads every caption, as LEVIR-CC annotators did; others join at random.
    order = sorted(events, key=lambda e: -e.pixels)
    out: list[str] = []
    for _ in range(200):
        chosen = [order[0], *(e for e in order[1:] if rng.random() < 0.55)][:3]
        if len(chosen) > 1 and rng.random() < 0.3:
            chosen[0], chosen[1] = chosen[1], chosen[0]
        s = _Say(rng)
        text = ""
        for ev in chosen:
            clause = CLAUSES[ev.kind](s, ev)
            longer = _join(text, "and" if text else "", clause)
            if len(longer.split()) > MAX_WORDS:
                break
            text = longer
        if text not in out:
            out.append(text)
        if len(out) == n:
            return out
    raise RuntimeError(f"could not phrase {n} different captions for {[e.kind for e in events]}")

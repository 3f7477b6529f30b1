"""The real-background generator: real unchanged pairs, objects on real ground, real buildings moved.

Backgrounds are a real Joplin tile with its real footprints (../shared/data), plus a small GeoTIFF
made here whose "buildings" are known squares, so that exact expectations can be written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hisem.data.synth.backgrounds import BackgroundBank, BackgroundError, load_bank, load_folder
from hisem.data.synth.captions import NO_CHANGE
from hisem.data.synth.real_looks import develop, sample_real_looks
from hisem.data.synth.real_pair import REAL_KINDS, composite, make_real_pair
from hisem.data.synth.writer import plan, write_dataset
from tests.backend.conftest import SHARED_DATA

JOPLIN = SHARED_DATA / "real" / "joplin"
pytestmark = pytest.mark.skipif(not JOPLIN.is_dir(), reason="../shared/data/real/joplin is not here")


@pytest.fixture(scope="module")
def joplin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-event tile and the footprints, in a folder of their own (footprints apply per folder)."""
    folder = tmp_path_factory.mktemp("joplin-pre")
    (folder / "tile.tif").symlink_to(JOPLIN / "pre" / "tile_337-10160.tif")
    (folder / "buildings.geojson").symlink_to(JOPLIN / "buildings-footprints.geojson")
    return folder


@pytest.fixture(scope="module")
def bank(joplin_dir: Path) -> BackgroundBank:
    return load_bank((str(joplin_dir),), 0.5)


def test_backgrounds_load_at_the_generator_gsd_with_their_footprints(bank: BackgroundBank) -> None:
    (bg,) = bank.backgrounds
    # 1024 px at 0.6 m is 1229 px at 0.5 m; the 2,823 footprints cover part of this tile.
    assert bg.rgb.shape == (1229, 1229, 3) and bg.rgb.dtype == np.uint8
    assert bg.buildings is not None
    n = len(np.unique(bg.buildings)) - 1
    assert 50 < n < 2823
    assert 0.02 < (bg.buildings > 0).mean() < 0.5


def test_a_folder_without_images_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackgroundError, match="no usable"):
        load_folder(tmp_path, 0.5)
    with pytest.raises(BackgroundError, match="not a folder"):
        load_folder(tmp_path / "missing", 0.5)


@pytest.mark.parametrize("kind", REAL_KINDS)
def test_real_pairs_are_deterministic_and_keep_the_contract(bank: BackgroundBank, kind: str) -> None:
    seed = np.random.SeedSequence(11, spawn_key=(3,))
    a, b = make_real_pair(seed, bank, kind), make_real_pair(np.random.SeedSequence(11, spawn_key=(3,)), bank, kind)
    assert np.array_equal(a.before, b.before) and np.array_equal(a.after, b.after)
    assert np.array_equal(a.mask, b.mask) and a.captions == b.captions
    other = make_real_pair(np.random.SeedSequence(12, spawn_key=(3,)), bank, kind)
    assert not np.array_equal(a.before, other.before)
    for img in (a.before, a.after):
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert set(np.unique(a.mask)) <= {0, 255}
    assert len(set(a.captions)) == 5
    if kind == "same":
        assert a.changeflag == 0 and not a.mask.any() and tuple(a.captions) == NO_CHANGE
        # Independent looks: the two dates differ although nothing changed.
        assert np.abs(a.before.astype(int) - a.after.astype(int)).mean() > 2
    else:
        assert a.changeflag == 1 and a.mask.any() and "same as before" not in " ".join(a.captions)


def test_building_masks_are_exactly_the_covered_pixels(bank: BackgroundBank, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the nuisances off, the dates differ exactly inside the mask, and the caption counts buildings."""
    import hisem.data.synth.real_pair as rp

    still = sample_real_looks(np.random.default_rng(0))[0].__class__(
        shift=(0.0, 0.0), rotation=0.0, scale=1.0, relief=0.0, gain=(1.0, 1.0, 1.0), gamma=1.0, contrast=1.0,
        saturation=1.0, season=0.0, haze=0.0, blur=0.0, coarse=1.0, jpeg=0, noise=0.0, grey=False)
    monkeypatch.setattr(rp, "_two_dates", lambda rng, b, a, size: (
        develop(b, still, size, rng), develop(a, still, size, rng)))
    for i in range(6):
        pair = make_real_pair(np.random.SeedSequence(5, spawn_key=(i,)), bank, "buildings")
        diff = np.abs(pair.before.astype(int) - pair.after.astype(int)).max(axis=-1) > 2  # > rounding
        mask = pair.mask > 0
        assert not (diff & ~mask).any(), "a pixel changed outside the mask"
        assert diff[mask].mean() > 0.8, "most masked pixels must really change"
        (event,) = pair.events
        assert event.kind in ("buildings_built", "buildings_demolished") and event.count >= 1


def test_composite_shows_objects_only_where_their_ids_are(bank: BackgroundBank) -> None:
    from hisem.data.synth.pair import render_pair

    rng = np.random.default_rng(4)
    r = render_pair(rng, 256, 0.5, changed=True)
    touched = frozenset().union(*(e.added | e.removed for e in r.events))
    ground = bank.crop(rng, r.canvas_b.shape[-1]).rgb
    out = composite(ground, r.canvas_b, r.ids_b, r.scene_b, r.look_b, touched)
    alpha = np.isin(r.ids_b, list(touched))
    assert np.array_equal(out[:, alpha], r.canvas_b[:, alpha])
    # Elsewhere it is the real ground, darker at most (shadows), never brighter.
    assert (out[:, ~alpha] <= ground[:, ~alpha] + 1e-6).all()


def test_plan_puts_the_requested_share_on_real_backgrounds() -> None:
    slots = plan(4000, (0.9, 0.1, 0.0), 0.5, seed=3, real_fraction=0.6, footprint_fraction=0.4)
    sources = [s.source for s in slots]
    assert abs(sum(s != "synthetic" for s in sources) / 4000 - 0.6) < 0.03
    assert all(s.source in ("synthetic", "same") for s in slots if not s.changed)
    changed_real = [s.source for s in slots if s.changed and s.source != "synthetic"]
    assert abs(changed_real.count("buildings") / len(changed_real) - 0.4) < 0.05
    # The synthetic-only plan is unchanged by the new arguments' defaults.
    assert [s.source for s in plan(100, (0.8, 0.1, 0.1), 0.5, seed=3)] == ["synthetic"] * 100


def test_write_dataset_with_real_backgrounds_is_reproducible(tmp_path: Path, joplin_dir: Path) -> None:
    for out in (tmp_path / "one", tmp_path / "two"):
        write_dataset(out, 12, seed=7, workers=1 if out.name == "one" else 2, progress=False,
                      real=(str(joplin_dir),), real_fraction=0.75)
    one = json.loads((tmp_path / "one" / "LevirCCcaptions.json").read_text())
    two = json.loads((tmp_path / "two" / "LevirCCcaptions.json").read_text())
    assert one == two
    assert {i.get("source", "synthetic") for i in one["images"]} - {"synthetic"}
    for entry in one["images"]:
        for folder in ("A", "B", "label"):
            a = (tmp_path / "one" / "images" / entry["split"] / folder / entry["filename"]).read_bytes()
            assert a == (tmp_path / "two" / "images" / entry["split"] / folder / entry["filename"]).read_bytes()

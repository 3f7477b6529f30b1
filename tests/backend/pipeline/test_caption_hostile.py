"""`hisem caption` on careless inputs: exit 2 and one line naming the problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_files import LOCAL_CS, MARS_UTM, relabel_crs
from osgeo import gdal

from hisem.cli import main


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


@pytest.mark.parametrize(("crs", "words"), [(LOCAL_CS, "engineering (local) CRS"),
                                            (MARS_UTM, "cannot be transformed to WGS 84")])
def test_raster_crs_off_the_earth(scene: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  crs: str, words: str) -> None:
    odd = relabel_crs(scene / "after.tif", tmp_path / "odd.tif", crs)
    _fails(capsys, ["caption", str(scene / "before.tif"), str(odd), "--model", str(tiny_model), "--no-progress",
                    "-o", str(tmp_path / "out.gpkg")], words)
    assert not (tmp_path / "out.gpkg").exists()


@pytest.mark.parametrize(("extra", "words"), [
    (["--bbox=-1e308,-1e308,1e308,1e308", "--bbox-crs", "EPSG:4326"], "outside the range of its CRS"),
    (["--bbox", "0,0,10,10", "--bbox-crs", LOCAL_CS], "engineering (local) CRS"),
    (["--aoi", "POLYGON ((0 0,1 0,1 1,0 0))", "--aoi-crs", MARS_UTM], "cannot be transformed to WGS 84"),
    (["--beam", "1000"], "--beam 1000: must be within [1, 10]"),
    (["--gsd", "nan"], "--gsd nan: must be a positive number"),
    (["--tile-size", "128"], "--tile-size 128: the model takes tiles of 64 px"),
])
def test_bad_aoi_and_parameters(scene: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                extra: list[str], words: str) -> None:
    _fails(capsys, ["caption", str(scene / "before.tif"), str(scene / "after.tif"), "--model", str(tiny_model),
                    "--no-progress", "-o", str(tmp_path / "out.gpkg"), *extra], words)


def test_one_band_error_suggests_what_works(scene: Path, tiny_model: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    gray = tmp_path / "gray.tif"
    gdal.Translate(str(gray), str(scene / "after.tif"), bandList=[1])
    base = ["--model", str(tiny_model), "--no-progress", "--max-tiles", "1"]
    _fails(capsys, ["caption", str(gray), str(gray), *base, "-o", str(tmp_path / "a.gpkg")], "e.g. 1,1,1")
    # The suggestion is accepted: the run goes on to the next check (the tile limit of 1).
    _fails(capsys, ["caption", str(gray), str(gray), *base, "--bands", "1,1,1", "-o", str(tmp_path / "b.gpkg")],
           "more than the limit of 1")

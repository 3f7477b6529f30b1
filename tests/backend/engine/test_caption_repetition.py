"""The n-gram size from `hisem caption --no-repeat-ngram N` and the service's params to the engine's search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_support import TrainedModel
from osgeo import ogr
from pydantic import ValidationError

from hisem.cli import main
from hisem.engine import NO_REPEAT_NGRAM
from hisem.pipeline import CaptionOptions
from hisem.service.schemas import JobParams

ogr.UseExceptions()


def caption(scene: Path, model: Path, out: Path, *extra: str) -> tuple[list[str], dict]:
    """Run the CLI; the tiles' captions and the run's recorded parameters."""
    argv = ["caption", str(scene / "before.tif"), str(scene / "after.tif"), "-o", str(out), "--model", str(model),
            "--no-progress", *extra]
    assert main(argv) == 0
    ds = ogr.Open(str(out))
    captions = [f.GetField("caption") for f in ds.GetLayerByName("tiles")]
    run = {f.GetField("key"): f.GetField("value") for f in ds.GetLayerByName("run")}
    return captions, json.loads(run["parameters"])


def repeats_a_word(text: str) -> bool:
    words = text.split()
    return len(words) != len(set(words))


def test_the_flag_reaches_the_search(scene: Path, trained: TrainedModel, tmp_path: Path) -> None:
    model = trained.model_dir
    _, params = caption(scene, model, tmp_path / "default.gpkg")
    assert params["no_repeat_ngram"] == NO_REPEAT_NGRAM == 3
    # The tiny model says "the scene is the same as before": "the" twice, unless 1-grams are blocked.
    raw, params = caption(scene, model, tmp_path / "off.gpkg", "--no-repeat-ngram", "0")
    assert params["no_repeat_ngram"] == 0 and any(repeats_a_word(c) for c in raw)
    blocked, params = caption(scene, model, tmp_path / "one.gpkg", "--no-repeat-ngram", "1")
    assert params["no_repeat_ngram"] == 1 and not any(repeats_a_word(c) for c in blocked)


def test_a_negative_size_is_refused(scene: Path, trained: TrainedModel, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["caption", str(scene / "before.tif"), str(scene / "after.tif"), "-o", str(tmp_path / "out.gpkg"),
            "--model", str(trained.model_dir), "--no-progress", "--no-repeat-ngram", "-1"]
    assert main(argv) == 2
    assert "--no-repeat-ngram -1: must be 0 (off) or a positive n-gram size" in capsys.readouterr().err
    assert not (tmp_path / "out.gpkg").exists()


def test_one_default_everywhere_and_the_service_passes_its_param() -> None:
    # Options and params state 3 themselves (importing the engine would load onnxruntime): they must agree.
    assert CaptionOptions().no_repeat_ngram == JobParams().no_repeat_ngram == NO_REPEAT_NGRAM
    options = JobParams.model_validate({"no_repeat_ngram": 0}).caption_options()
    assert CaptionOptions(**options).no_repeat_ngram == 0
    with pytest.raises(ValidationError, match="no_repeat_ngram"):
        JobParams.model_validate({"no_repeat_ngram": -1})

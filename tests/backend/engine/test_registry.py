"""Model discovery: search folders and their order, the default model, lookups by id or path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from hisem.engine import registry
from hisem.engine.modelfiles import FORMAT, graph_filename


def make_model(
    root: Path, model_id: str, precisions: tuple[str, ...] = ("fp32",), folder: str | None = None
) -> Path:
    """A model folder with a model card and (empty) graph files: listing never opens the graphs."""
    path = root / (folder or model_id)
    path.mkdir(parents=True)
    card = {"format": FORMAT, "model_id": model_id, "preset": "tiny", "tile_size": 64, "gsd_m": 0.5,
            "bands": "RGB", "metrics": {"val_S*m": 0.5}}
    (path / "model.json").write_text(json.dumps(card))
    for precision in precisions:
        for graph in ("encoder", "decoder_step"):
            (path / graph_filename(graph, precision)).touch()
    return path


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Isolated search folders: two in $HISEM_MODELS_DIR, the user's, the repository's."""
    paths = {name: tmp_path / name for name in ("env1", "env2", "data", "repo")}
    monkeypatch.setenv("HISEM_MODELS_DIR", f"{paths['env1']}:{paths['env2']}")
    monkeypatch.setenv("XDG_DATA_HOME", str(paths["data"]))
    monkeypatch.setattr(registry, "REPO_MODELS_DIR", paths["repo"])
    return paths


def test_search_order(dirs: dict[str, Path]) -> None:
    user = dirs["data"] / "hisem" / "models"
    assert registry.model_dirs() == [dirs["env1"], dirs["env2"], user, dirs["repo"]]


def test_repo_models_dir_is_the_repository_resources() -> None:
    repo = Path(__file__).resolve().parents[3]
    assert repo / "resources" / "models" == registry.REPO_MODELS_DIR


def test_first_folder_wins_and_precisions_come_from_files(dirs: dict[str, Path]) -> None:
    make_model(dirs["repo"], "shared", ("fp32",))
    make_model(dirs["env2"], "shared", ("fp32", "int8"))
    make_model(dirs["data"] / "hisem" / "models", "mine")
    models = {m.id: m for m in registry.list_models()}
    assert set(models) == {"shared", "mine"}
    assert models["shared"].path == dirs["env2"] / "shared"
    assert models["shared"].precisions == ("fp32", "int8")
    assert models["mine"].metrics == {"val_S*m": 0.5} and models["mine"].tile_size == 64


def test_broken_folders_are_skipped_with_a_warning(
    dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    make_model(dirs["env1"], "good")
    (dirs["env1"] / "bad-json").mkdir()
    (dirs["env1"] / "bad-json" / "model.json").write_text("{not json")
    make_model(dirs["env1"], "no-graphs", precisions=())
    with caplog.at_level(logging.WARNING):
        assert [m.id for m in registry.list_models()] == ["good"]
    assert "bad-json" in caplog.text and "no-graphs" in caplog.text


def test_default_model(dirs: dict[str, Path]) -> None:
    assert registry.default_model_id() is None
    with pytest.raises(FileNotFoundError, match="no model installed"):
        registry.resolve_model()
    make_model(dirs["repo"], "zz-other")
    assert registry.default_model_id() == "zz-other"  # the only one
    make_model(dirs["repo"], registry.DEFAULT_MODEL_ID)
    assert registry.default_model_id() == registry.DEFAULT_MODEL_ID
    assert registry.resolve_model().id == registry.DEFAULT_MODEL_ID


def test_resolve_by_id_and_by_path(dirs: dict[str, Path], tmp_path: Path) -> None:
    make_model(dirs["env1"], "a")
    elsewhere = make_model(tmp_path / "loose", "b-id", folder="b-folder")
    assert registry.resolve_model("a").path == dirs["env1"] / "a"
    assert registry.resolve_model(elsewhere).id == "b-id"
    assert registry.resolve_model(str(elsewhere)).id == "b-id"
    with pytest.raises(FileNotFoundError, match="installed: a"):
        registry.resolve_model("missing")

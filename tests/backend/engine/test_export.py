"""`hisem export` output: two checked single-file graphs, their metadata, model.json, int8 graphs."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from engine_support import TrainedModel
from onnx.external_data_helper import uses_external_data

from hisem.cli import main as hisem_main
from hisem.engine.modelfiles import FORMAT, decode_metadata, graph_filename
from hisem.model import load_checkpoint

GRAPH_FILES = [graph_filename(g, p) for p in ("fp32", "int8") for g in ("encoder", "decoder_step")]


def _metadata(path: Path) -> dict:
    proto = onnx.load(str(path), load_external_data=False)
    return decode_metadata({p.key: p.value for p in proto.metadata_props}, str(path))


@pytest.mark.parametrize("name", GRAPH_FILES)
def test_graphs_are_checked_single_files(trained: TrainedModel, name: str) -> None:
    path = trained.model_dir / name
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(uses_external_data(t) for t in proto.graph.initializer)
    assert sorted(p.name for p in trained.model_dir.iterdir()) == sorted([*GRAPH_FILES, "model.json", "weights.pt"])


def test_metadata_round_trip(trained: TrainedModel) -> None:
    model, vocab, extra = load_checkpoint(trained.run / "best.pt")
    card = json.loads((trained.model_dir / "model.json").read_text())
    for name in GRAPH_FILES:
        meta = _metadata(trained.model_dir / name)
        assert meta["graph"] == name.split(".")[0]
        assert meta["precision"] == ("int8" if ".int8." in name else "fp32")
        # every graph carries the model card's description, word for word
        assert {k: v for k, v in meta.items() if k not in ("graph", "precision")} == {
            k: v for k, v in card.items() if k not in ("files", "precisions", "precision")
        }
    assert card["format"] == FORMAT and card["model_id"] == "tiny-synthetic-test"
    assert card["preset"] == "tiny" and card["tile_size"] == 64 and card["gsd_m"] == 0.5
    assert card["bands"] == "RGB" and card["vocab"] == vocab
    assert card["config"] == json.loads(json.dumps(model.cfg.to_dict()))
    assert card["normalization"]["mean"] == list(model.cfg.encoder.mean)
    assert card["normalization"]["input_range"] == [0, 255]
    assert card["metrics"]["val_S*m"] == pytest.approx(extra["metrics"]["val_S*m"])
    assert card["training_data"]["dataset"] == trained.data.name
    assert card["export"]["torch"] and card["export"]["opset"] == 20
    assert card["precisions"] == ["fp32", "int8"]


def test_graph_contract_names_types_and_dynamic_axes(trained: TrainedModel) -> None:
    def io(path: Path) -> dict[str, tuple[int, list[str | int]]]:
        g = onnx.load(str(path), load_external_data=False).graph
        types = {v.name: v.type.tensor_type for v in [*g.input, *g.output]}
        return {n: (t.elem_type, [d.dim_param or d.dim_value for d in t.shape.dim]) for n, t in types.items()}

    f32, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    enc = io(trained.model_dir / "encoder.onnx")
    assert set(enc) == {"before", "after", "cross_kv", "change_prob", "mask_logits"}
    assert enc["before"][0] == f32 and enc["before"][1][1:] == [3, 64, 64]
    assert isinstance(enc["before"][1][0], str)  # symbolic batch
    assert enc["change_prob"][1][1] == 2 and enc["mask_logits"][1][1:] == [1, 64, 64]
    dec = io(trained.model_dir / "decoder_step.onnx")
    assert set(dec) == {"cross_kv", "tokens", "log_probs"}
    assert enc["cross_kv"][1][1:] == [2, 4, 64, 16] and dec["cross_kv"][1][1:] == [2, 4, 64, 16]
    assert dec["tokens"][0] == i64 and all(isinstance(d, str) for d in dec["tokens"][1])  # batch and T
    assert dec["log_probs"][0] == f32


def test_int8_quantises_matmuls_only(trained: TrainedModel) -> None:
    for graph in ("encoder", "decoder_step"):
        proto = onnx.load(str(trained.model_dir / graph_filename(graph, "int8")))
        ops = {n.op_type for n in proto.graph.node}
        assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}, graph
        assert "ConvInteger" not in ops
    fp32 = (trained.model_dir / "encoder.onnx").stat().st_size
    assert (trained.model_dir / "encoder.int8.onnx").stat().st_size < 0.75 * fp32


def test_export_refuses_to_overwrite_and_reports_missing_model(trained: TrainedModel, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert hisem_main(["export", "--model", str(trained.run), "-o", str(trained.model_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert hisem_main(["export", "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "m")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_models_command_lists_the_export(trained: TrainedModel, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hisem.engine import registry

    monkeypatch.setenv("HISEM_MODELS_DIR", str(trained.model_dir.parent))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(registry, "REPO_MODELS_DIR", tmp_path / "no-repo-models")
    assert hisem_main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["default"] == "tiny-synthetic-test"
    (entry,) = listing["models"]
    assert entry["id"] == "tiny-synthetic-test" and entry["preset"] == "tiny" and entry["tile_size"] == 64
    assert entry["precisions"] == ["fp32", "int8"] and entry["gsd_m"] == 0.5
    assert "val_S*m" in entry["metrics"]
    assert hisem_main(["models"]) == 0
    table = capsys.readouterr().out
    assert "* tiny-synthetic-test" in table and "fp32/int8" in table

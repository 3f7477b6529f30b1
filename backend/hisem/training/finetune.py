"""Fine-tuning: `hisem train --init MODEL` starts from a trained model's weights and vocabulary.

MODEL is an installed model id (looked up like `hisem caption --model`), a model folder written by
`hisem export` (its ``weights.pt``), a training run folder (best.pt, else last.pt) or a checkpoint
file. Words of the new data that the parent does not know map to <UNK>, unless the vocabulary is
extended: then the new words get embedding and output rows of their own (``grow_vocabulary``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from hisem.data.readers import PairRecord
from hisem.data.vocab import SPECIALS, Vocab
from hisem.engine.modelfiles import MODEL_CARD, read_model_card
from hisem.engine.registry import resolve_model
from hisem.model import HiSem, build_model, load_checkpoint
from hisem.model.checkpoint import WEIGHTS_FILE

log = logging.getLogger(__name__)

FINE_TUNE_EPOCHS = 3
FINE_TUNE_SCHEDULE = "cosine"


@dataclass
class Parent:
    """The model a fine-tuning run starts from, and how its card will name it."""

    model: HiSem
    vocab: Vocab
    info: dict[str, Any]  # model_id, source, preset, training_data: the child's card "parent_model"


def _weights_of_folder(folder: Path) -> tuple[Path, str]:
    """(weights.pt, model id) of an exported model folder; a clear error when it has none."""
    card = read_model_card(folder)
    model_id = str(card.get("model_id", folder.name))
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(
            f"model {model_id!r} (folder {folder.name}) carries no PyTorch weights ({WEIGHTS_FILE}): it was "
            "exported before models could be fine-tuned, and its ONNX graphs cannot be trained. "
            "Fine-tune from its training run or checkpoint instead (--init RUN_OR_CHECKPOINT), or "
            "re-export that run with `hisem export`, which writes weights.pt."
        )
    return weights, model_id


def locate_parent(spec: str) -> tuple[Path, dict[str, str]]:
    """The file to load for ``--init spec`` and what kind of source it is."""
    path = Path(spec).expanduser()
    if path.is_file():
        # a run's best.pt / last.pt / release.pt is named after its run folder
        named = path.parent.name if path.stem in ("best", "last", "release") else path.stem
        return path, {"model_id": named, "source": "checkpoint"}
    if path.is_dir():
        if (path / MODEL_CARD).is_file():
            weights, model_id = _weights_of_folder(path)
            return weights, {"model_id": model_id, "source": "model folder"}
        from hisem.evaluation.predict import resolve_checkpoint

        return resolve_checkpoint(path), {"model_id": path.name, "source": "training run"}
    try:
        info = resolve_model(spec)  # an installed model's id
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--init {spec}: not a checkpoint, run folder or model folder, and {exc}") from None
    weights, model_id = _weights_of_folder(info.path)
    return weights, {"model_id": model_id, "source": "installed model"}


def load_parent(spec: str) -> Parent:
    """Load ``--init spec``: the parent model (CPU), its vocabulary and its description."""
    from hisem.export.metadata import training_data_of

    path, info = locate_parent(spec)
    model, vocab, extra = load_checkpoint(path, map_location="cpu")
    options = extra.get("options") if isinstance(extra.get("options"), dict) else {}
    info = {
        **info,
        "model_id": str(extra.get("model_id") or info["model_id"]),
        "preset": str(options.get("preset") or extra.get("preset") or model.cfg.encoder.name),
        "training_data": training_data_of(extra),
    }
    log.info("fine-tuning from %s %s (%s preset)", info["source"], info["model_id"], info["preset"])
    return Parent(model, Vocab.from_dict(vocab), info)


def new_words(vocab: Vocab, records: Sequence[PairRecord], min_count: int) -> list[str]:
    """Training words seen at least ``min_count`` times that ``vocab`` lacks, sorted."""
    counts: Counter[str] = Counter()
    for record in records:
        for caption in record.captions:
            counts.update(caption)
    return sorted(w for w, n in counts.items() if n >= min_count and w not in vocab and w not in SPECIALS)


def grow_vocabulary(state: dict[str, torch.Tensor], old_size: int, new_size: int) -> dict[str, torch.Tensor]:
    """The decoder's embedding and output rows grown from ``old_size`` to ``new_size`` words.

    A new word starts from the mean of the known words' rows (embedding and output weights) and
    the lowest output bias, so the fine-tuned model does not begin by saying words it never saw.
    """
    grown = dict(state)
    extra = new_size - old_size
    for key in ("decoder.embed.weight", "decoder.head.weight"):
        rows = state[key]
        mean = rows[len(SPECIALS):].mean(dim=0, keepdim=True) if old_size > len(SPECIALS) else rows.mean(0, True)
        grown[key] = torch.cat([rows, mean.expand(extra, -1)], dim=0)
    bias = state["decoder.head.bias"]
    grown["decoder.head.bias"] = torch.cat([bias, bias.min().expand(extra)])
    return grown


def child_model(parent: Parent, vocab: Vocab, train_backbone: int | None) -> HiSem:
    """The model to fine-tune: the parent's weights, ``vocab``'s size, the backbone frozen by default.

    ``train_backbone`` N: train the backbone's last N blocks (the tiny CNN: all of it) instead.
    """
    cfg = parent.model.cfg
    encoder = (
        replace(cfg.encoder, freeze=True)
        if train_backbone is None
        else replace(cfg.encoder, freeze=False, trainable_blocks=train_backbone)
    )
    child_cfg = replace(cfg, encoder=encoder, vocab_size=len(vocab))
    state = parent.model.state_dict()
    if len(vocab) != cfg.vocab_size:
        state = grow_vocabulary(state, cfg.vocab_size, len(vocab))
    model = build_model(child_cfg, load_weights=False)  # every weight comes from the parent
    model.load_state_dict(state)
    return model

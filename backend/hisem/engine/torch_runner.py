"""The PyTorch runner: a checkpoint behind the runner interface, for parity tests and benchmarks.

It runs the very wrappers that export traces (export.graphs), so ONNX Runtime and PyTorch can differ
only by what the export itself changed; its metadata is the one export would write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hisem.data.vocab import Vocab
from hisem.engine.decoding import NO_REPEAT_NGRAM
from hisem.engine.runner import TileResult, caption_tiles, check_tiles, sigmoid
from hisem.evaluation.predict import resolve_checkpoint
from hisem.export.graphs import DecoderStepGraph, EncoderGraph
from hisem.export.metadata import build_metadata
from hisem.model import load_checkpoint


class TorchRunner:
    """``TorchRunner(checkpoint, device="cpu")``: a checkpoint file or run folder; see ``Runner``."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu", model_id: str | None = None) -> None:
        path = resolve_checkpoint(checkpoint)
        self.device = torch.device(device)
        model, vocab, extra = load_checkpoint(path, map_location=self.device)
        self._encoder = EncoderGraph(model).to(self.device).eval()
        self._decoder = DecoderStepGraph(model).to(self.device).eval()
        self._metadata = build_metadata(model, vocab, extra, model_id or path.resolve().parent.name)
        self.vocab = Vocab.from_dict(vocab)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @property
    def tile_size(self) -> int:
        return int(self._metadata["tile_size"])

    @property
    def providers(self) -> list[str]:
        return [f"torch-{self.device.type}"]

    @torch.inference_mode()
    def encode(self, before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b, a = check_tiles(before, after, self.tile_size)
        memory, change_prob, mask_logits = self._encoder(
            torch.from_numpy(b).to(self.device), torch.from_numpy(a).to(self.device)
        )
        return (memory.cpu().numpy(), change_prob[:, 1].cpu().numpy(),
                sigmoid(mask_logits[:, 0].cpu().numpy()))

    @torch.inference_mode()
    def step(self, memory: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        mem = torch.from_numpy(np.ascontiguousarray(memory, dtype=np.float32)).to(self.device)
        tok = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)).to(self.device)
        return self._decoder(mem, tok).cpu().numpy()

    def caption(
        self,
        before: np.ndarray,
        after: np.ndarray,
        beam: int = 1,
        n_best: int = 1,
        max_len: int | None = None,
        length_penalty: float = 0.0,
        no_repeat_ngram: int = NO_REPEAT_NGRAM,
    ) -> list[TileResult]:
        return caption_tiles(self, self.vocab, before, after, beam, n_best, max_len, length_penalty, no_repeat_ngram)

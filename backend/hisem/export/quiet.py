"""Keep the export tools' chatter out of the user's terminal (``hisem`` logs at INFO).

onnxscript and onnx_ir log every rewrite at INFO; onnxruntime's quantiser logs a line per tensor to
the *root* logger; torch's exporter warns about torchvision and its own deprecations. None of it
is actionable for someone exporting a model; real errors still raise.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# logger -> the least severe level still shown; "" = the root logger (the quantiser's)
NOISY_LOGGERS = {"onnxscript": logging.ERROR, "onnx_ir": logging.ERROR, "torch.onnx": logging.ERROR,
                 "": logging.WARNING}


@contextmanager
def quiet_export_tools() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg, quiet in zip(loggers, NOISY_LOGGERS.values(), strict=True):
        lg.setLevel(max(lg.level, quiet))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)

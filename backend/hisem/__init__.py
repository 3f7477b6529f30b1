"""HiSem change captioning backend: model, data, training, evaluation and inference."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hisem")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

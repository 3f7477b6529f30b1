"""The caption pipeline: two dated rasters in, captioned georeferenced changes out.

One library call (``caption_changes``) shared by ``hisem caption`` and the HTTP service, so
both are thin clients of the same code path.
"""

from hisem.pipeline.caption import PipelineCancelled, caption_changes
from hisem.pipeline.options import CaptionOptions, CaptionResult

__all__ = ["CaptionOptions", "CaptionResult", "PipelineCancelled", "caption_changes"]

"""The caption pipeline: two dated rasters in, captioned georeferenced changes out.

One library call (``caption_changes``) shared by ``hisem caption`` and the HTTP service, so
both are thin clients of the same code path.
"""

from hisem.pipeline.caption import PipelineCancelled, caption_changes, plan_run
from hisem.pipeline.options import CaptionOptions, CaptionResult, RunPlan

__all__ = ["CaptionOptions", "CaptionResult", "PipelineCancelled", "RunPlan", "caption_changes", "plan_run"]

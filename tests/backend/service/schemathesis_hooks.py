"""Schemathesis hooks (SCHEMATHESIS_HOOKS=schemathesis_hooks): give some generated jobs real uploads.

Random bytes are never a GeoTIFF, so every generated ``POST /v1/jobs`` would be refused and the
stateful phase would never follow the links of a created job (status, result, delete). Half of the
generated bodies get a one-tile GeoTIFF as both dates and a valid ``params``; the other half stay
as generated. The test passes the file and the model id in the environment.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import schemathesis


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    operation = context.operation
    if operation is None or operation.method.upper() != "POST" or operation.path != "/v1/jobs" \
            or not isinstance(body, dict):
        return body
    if zlib.crc32(repr(sorted(body.items(), key=str)).encode()) % 2:  # deterministic: the same case, the same choice
        return body
    tif = Path(os.environ["HISEM_TEST_GEOTIFF"]).read_bytes()
    return {**body, "before": tif, "after": tif, "params": json.dumps({"model": os.environ["HISEM_TEST_MODEL"]})}

"""The local HTTP backend (``hisem serve``): the /v1 contract of ../../docs/api.md.

    schemas   the request and response bodies (the source of docs/openapi.json)
    settings  server flags; the loopback-or-token rule
    app       FastAPI routes, auth, error bodies; the lifespan starts the workers
    limits    upload size limit (ASGI middleware, 413)
    jobs      job states, progress, ETA, persistence and retention on disk
    workers   worker processes running ``hisem.pipeline.caption_changes``; supervisors
    result    the result GeoPackage as the contract's GeoJSON
    launcher  `hisem serve` in a child process on a free port (benchmarks, tests, scripts)
"""

from hisem.service.app import create_app
from hisem.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]

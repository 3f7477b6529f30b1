"""`hisem serve`: the local HTTP backend that the QGIS plugin (or any client) talks to."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

# The server's caps (ServiceSettings fields of the same names), as flags.
_CAP_FLAGS = (
    ("max_tiles", int, "N", "tiles per job, whatever params.max_tiles says"),
    ("min_gsd_m", float, "M", "finest working GSD a job may ask for"),
    ("max_gsd_m", float, "M", "coarsest working GSD a job may ask for"),
    ("max_tile_megapixels", float, "MP", "source pixels per band warped into one tile (the overviews count)"),
    ("max_block_mb", float, "MIB", "one decoded block of an upload, all bands (decompression bombs)"),
    ("max_raster_megapixels", float, "MP", "width x height an upload may declare"),
    ("check_cpu_s", float, "S", "CPU time the check of one job's uploads may take"),
    ("check_memory_mb", float, "MIB", "address space of the process that checks one job's uploads"),
)


def register(sub: argparse._SubParsersAction) -> None:
    from hisem.service.settings import TOKEN_ENV, ServiceSettings

    p = sub.add_parser(
        "serve",
        help="run the HTTP backend (/v1: health, models, jobs)",
        description="Serve the /v1 API of docs/api.md with FastAPI on uvicorn. Binds 127.0.0.1 by default; "
        f"any other host needs a token (--token or ${TOKEN_ENV}), and then every endpoint but /v1/health "
        "asks for 'Authorization: Bearer TOKEN'. Browsers: only loopback Host names (and --allow-host) and no "
        "foreign Origin (but --allow-origin) are answered.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", default=None,
                   help=f"access token (default: ${TOKEN_ENV}; prefer the variable: arguments show in ps)")
    p.add_argument("--models", type=Path, default=None, metavar="DIR",
                   help="a folder of exported models, searched before the user's and the shipped ones")
    p.add_argument("--max-upload-mb", type=float, default=512.0, metavar="N",
                   help="largest request body in MiB (default 512); larger uploads get 413")
    p.add_argument("--max-queue", type=int, default=16, metavar="N",
                   help="jobs queued or running at most (default 16); more get 429")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes running jobs in parallel (default 1)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="ONNX Runtime threads per worker (default: CPU cores / workers)")
    p.add_argument("--jobs-dir", type=Path, default=None, metavar="DIR",
                   help="where jobs keep their inputs and results (default $XDG_STATE_HOME/hisem/jobs)")
    p.add_argument("--keep-results-h", type=float, default=24.0, metavar="H",
                   help="hours a finished job and its results are kept (default 24)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a Host name clients use to reach this server, besides loopback and --host (repeatable; "
                   "'*' for any): other Host headers get 403 (DNS rebinding)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web page origin (https://example.org) allowed to call this server, with CORS "
                   "(repeatable): requests with any other Origin get 403 (CSRF)")
    caps = p.add_argument_group("caps", "what one job may cost; a request beyond one gets 413/422 naming it")
    for name, kind, metavar, help_text in _CAP_FLAGS:
        default = getattr(ServiceSettings, name)
        caps.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, metavar=metavar,
                          help=f"{help_text} (default {default:g})")
    p.add_argument("--openapi", type=Path, default=None, metavar="FILE",
                   help="write the OpenAPI document to FILE and exit (docs/openapi.json)")
    p.set_defaults(func=run)


def openapi_document() -> dict:
    """The OpenAPI document of the app with default settings (what docs/openapi.json holds)."""
    from hisem.service import ServiceSettings, create_app

    return create_app(ServiceSettings()).openapi()


def run(args: argparse.Namespace) -> int:
    from hisem.cli import CommandError
    from hisem.engine.registry import ENV_VAR
    from hisem.service.settings import TOKEN_ENV, ServiceSettings

    if args.openapi is not None:
        args.openapi.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.openapi}")
        return 0
    settings = ServiceSettings(
        host=args.host, port=args.port, token=args.token or os.environ.get(TOKEN_ENV) or None,
        max_upload_mb=args.max_upload_mb, max_queue=args.max_queue, workers=args.workers,
        jobs_dir=args.jobs_dir, result_ttl_s=args.keep_results_h * 3600.0, threads=args.threads,
        allow_hosts=tuple(args.allow_host), allow_origins=tuple(args.allow_origin),
        **{name: getattr(args, name) for name, *_ in _CAP_FLAGS},
    )
    try:
        settings.check()
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.models is not None:
        if not args.models.is_dir():
            raise CommandError(f"--models {args.models}: no such folder")
        # Through the environment, so that the worker processes search it too.
        os.environ[ENV_VAR] = os.pathsep.join(p for p in (str(args.models.resolve()), os.environ.get(ENV_VAR)) if p)

    import uvicorn

    from hisem.service import create_app

    print(f"hisem serve: http://{settings.host}:{settings.port}/v1 (token {'required' if settings.token else 'off'})",
          flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                timeout_graceful_shutdown=10)
    return 0

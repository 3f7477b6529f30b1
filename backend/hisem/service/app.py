"""The FastAPI application of ``hisem serve``: the /v1 contract of docs/api.md.

Request handlers only check and route: uploads go to a job folder, a short-lived child process
(``upload_check``: the pipeline's own ``plan_run`` and more) answers bad input with a 4xx before the
job is queued, and worker processes run ``caption_changes``; this process never decodes a pixel.
Handlers that touch disk are plain ``def``: FastAPI runs them in its thread pool, so the event loop
never blocks. ASGI guards (``guards``, ``limits``) answer foreign Hosts and Origins, missing tokens
and oversized bodies before a byte of the body is read.
"""


import asyncio
import hmac
import json
import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hisem import __version__
from hisem.service.errors import ApiError, client_file_name
from hisem.service.guards import HostOriginGuard, TokenGuard
from hisem.service.jobs import RESULT_GEOJSON, Job, JobStore, QueueFullError
from hisem.service.limits import BodySizeLimit
from hisem.service.schemas import ErrorBody, Health, JobParams, JobStatus, ModelEntry
from hisem.service.settings import ServiceSettings, default_jobs_dir, raster_limits
from hisem.service.upload_check import UploadChecker
from hisem.service.workers import WorkerPool

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 60.0
_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 410, 413, 422, 429)}
# OpenAPI links: a created job's id leads to its status, result and deletion (schemathesis walks them).
_JOB_LINKS = {name: {"operationId": op, "parameters": {"job_id": "$response.body#/id"}, "description": text}
              for name, op, text in (("GetJob", "get_job", "the job's state and progress"),
                                     ("GetJobResult", "get_job_result", "the result, once done"),
                                     ("DeleteJob", "delete_job", "cancel, or delete once finished"))}


def _validation_message(exc: ValidationError | RequestValidationError, prefix: str = "") -> str:
    """pydantic's errors as one line naming each field: "params.beam: Input should be ..."."""
    parts = []
    for error in exc.errors():
        loc = list(error.get("loc", ()))
        if isinstance(exc, RequestValidationError) and loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]  # FastAPI's "where": the field name says enough
        if error.get("type") == "extra_forbidden" and loc:
            error = {**error, "msg": "unknown field"}
        loc = ".".join(str(p) for p in loc)
        parts.append(f"{prefix}{loc}: {error.get('msg', 'invalid')}" if loc else f"{prefix.rstrip('.')}: "
                     f"{error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _save_upload(upload: UploadFile, path: Path, part: str) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
    if path.stat().st_size == 0:
        raise ApiError(422, f"{part}: the upload is empty")


def _parse_params(text: str) -> JobParams:
    """The ``params`` part: JSON, an object, and a valid ``JobParams`` (strict types, finite numbers)."""
    text = text or "{}"
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ApiError(422, f"params: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ApiError(422, "params: expected a JSON object")
    try:
        return JobParams.model_validate_json(text)
    except ValidationError as exc:
        raise ApiError(422, _validation_message(exc, "params.")) from None


def _allowed_methods(app: FastAPI, scope: dict[str, Any]) -> str:
    """Every method some route takes at this path (Starlette's 405 names only the first route's).

    Asked of the routes one method at a time: included routers are opaque objects that only answer
    ``matches``.
    """
    methods = {"OPTIONS"} | {method for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
                             if any(route.matches({**scope, "method": method})[0] is Match.FULL
                                    for route in app.router.routes)}
    return ", ".join(sorted(methods))


class ServiceState:
    """What the app holds between requests: the job store and the worker pool."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.store = JobStore(settings.jobs_dir or default_jobs_dir(), settings.max_queue, settings.result_ttl_s)
        self.pool = WorkerPool(self.store, settings.workers, settings.threads, raster_limits(settings.caps()))
        self.checker = UploadChecker(settings)
        self.engine: dict[str, Any] = {}

    def start(self) -> None:
        reloaded = self.store.load()
        if reloaded:
            log.info("reloaded %d jobs from %s", reloaded, self.store.root)
        self.engine = self.pool.start()
        self.checker.start()
        log.info("engine: model %s on %s (%s)", self.engine.get("model"), ", ".join(self.engine["providers"]),
                 self.engine["device"])

    def stop(self) -> None:
        self.checker.close()
        self.pool.stop()


def create_app(settings: ServiceSettings) -> FastAPI:
    """The app; its lifespan starts the workers (which load the engine) and stops them."""
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.start)

        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(min(SWEEP_INTERVAL_S, max(settings.result_ttl_s / 4, 1.0)))
                await run_in_threadpool(state.store.sweep)

        sweeper = asyncio.create_task(sweep_forever())
        try:
            yield
        finally:
            sweeper.cancel()
            await run_in_threadpool(state.stop)

    app = FastAPI(title="HiSem backend", version=__version__, lifespan=lifespan,
                  description="Caption the changes between two dated rasters. See docs/api.md.")
    app.state.service = state
    # Innermost first: the last added runs first, so Host/Origin, then the token, then the size.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(TokenGuard, token=settings.token)
    if settings.allow_origins:  # a web page allowed to call us also needs CORS answers
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.allow_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(HostOriginGuard, allowed_hosts=settings.allowed_hosts(), allowed_origins=settings.allow_origins)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=400)

    @app.exception_handler(ApiError)
    async def _refused(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code != 405:
            return await http_exception_handler(request, exc)
        allow = _allowed_methods(app, request.scope)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        return JSONResponse({"detail": f"{request.method} is not allowed here; allowed: {allow}"}, status_code=405,
                            headers={"Allow": allow})

    bearer = HTTPBearer(auto_error=False, description="required when the server was started with a token")

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if settings.token is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, settings.token.encode()):
            raise HTTPException(401, "missing or wrong token: send the header Authorization: Bearer TOKEN",
                                headers={"WWW-Authenticate": "Bearer"})

    public = APIRouter(prefix="/v1")
    private = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], responses=_ERRORS)

    @public.get("/health", response_model=Health, tags=["service"], operation_id="health")
    def health() -> dict[str, Any]:
        counts, workers = state.store.counts(), state.pool.health()
        return {"status": "ok" if workers["workers_alive"] == settings.workers else "degraded",
                "version": __version__, "model": state.engine.get("model"),
                "execution_provider": (state.engine.get("providers") or ["unknown"])[0],
                "providers": state.engine.get("providers", []), "device": state.engine.get("device", "unknown"),
                "workers": settings.workers, "jobs_queued": counts["queued"], "jobs_running": counts["running"],
                "auth_required": settings.token is not None, **workers, "caps": settings.caps()}

    @private.get("/models", response_model=list[ModelEntry], tags=["models"], operation_id="list_models")
    def models() -> list[dict[str, Any]]:
        from hisem.engine import list_models
        from hisem.engine.registry import default_model_id

        installed = list_models()
        default = default_model_id(installed)
        return [{**{k: v for k, v in m.to_json().items() if k != "path"}, "default": m.id == default}
                for m in installed]

    @private.post("/jobs", status_code=202, response_model=JobStatus, tags=["jobs"], operation_id="create_job",
                  responses={202: {"links": _JOB_LINKS}})
    def create_job(
        before: Annotated[UploadFile, File(description="the earlier image: GeoTIFF bytes")],
        after: Annotated[UploadFile, File(description="the later image: GeoTIFF bytes (any grid: the backend pairs)")],
        params: Annotated[str, Form(description="JSON object, schema JobParams (every field optional)")] = "{}",
    ) -> dict[str, Any]:
        try:
            job_id, job_dir = state.store.reserve()
        except QueueFullError as exc:
            raise ApiError(429, str(exc), headers={"Retry-After": "30"}) from None
        try:
            job = _plan_job(job_id, job_dir, before, after, params)
            state.store.add(job)
        except QueueFullError as exc:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise ApiError(429, str(exc), headers={"Retry-After": "30"}) from None
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        state.pool.submit(job_id)
        return job.status()

    @private.get("/jobs", response_model=list[JobStatus], tags=["jobs"], operation_id="list_jobs")
    def list_jobs() -> list[dict[str, Any]]:
        return state.store.all_status()

    @private.get("/jobs/{job_id}", response_model=JobStatus, tags=["jobs"], operation_id="get_job",
                 responses={200: {"links": {k: v for k, v in _JOB_LINKS.items() if k != "GetJob"}}})
    def get_job(job_id: str) -> dict[str, Any]:
        status = state.store.status(job_id)
        if status is None:
            raise HTTPException(404, f"no job {job_id!r} (finished jobs are kept {settings.result_ttl_s:.0f} s)")
        return status

    @private.delete("/jobs/{job_id}", response_model=JobStatus, tags=["jobs"], operation_id="delete_job")
    def delete_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (it stops within one batch); delete a finished one and its files."""
        job = state.store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        if job.finished_state:
            status = state.store.status(job_id) or job.status()
            state.store.remove(job_id)
            return status
        return state.store.cancel(job_id) or job.status()

    @private.get("/jobs/{job_id}/result", tags=["jobs"], response_class=FileResponse, operation_id="get_job_result",
                 responses={200: {"content": {"application/geo+json": {}},
                                  "description": "GeoJSON FeatureCollection: tiles, changes, provenance"}})
    def job_result(job_id: str) -> FileResponse:
        job = state.store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        if job.state != "done":
            why = f": {job.error}" if job.error else ""
            raise HTTPException(409, f"job {job_id} is {job.state}{why}; a result exists only for done jobs")
        path = job.dir / RESULT_GEOJSON
        if not path.is_file():
            raise ApiError(410, f"the result of job {job_id} is gone from the server (its files were deleted); "
                           "submit the job again")
        return FileResponse(path, media_type="application/geo+json", filename=f"hisem-{job_id}.geojson")

    def _plan_job(job_id: str, job_dir: Path, before: UploadFile, after: UploadFile, params_text: str) -> Job:
        from hisem.engine import list_models
        from hisem.engine.registry import default_model_id

        params = _parse_params(params_text)
        installed = {m.id: m for m in list_models()}
        model_id = params.model or default_model_id(list(installed.values()))
        if model_id is None:
            raise ApiError(422, "params.model: no model is installed on this server")
        if model_id not in installed:
            raise ApiError(422, f"params.model: no model {model_id!r} (installed: {', '.join(installed)})")
        _check_gsd(params.gsd if params.gsd is not None else installed[model_id].gsd_m)
        paths = {"before": job_dir / "before.tif", "after": job_dir / "after.tif"}
        names = {"before": client_file_name(before.filename, "before.tif"),
                 "after": client_file_name(after.filename, "after.tif")}
        for part, upload in (("before", before), ("after", after)):
            _save_upload(upload, paths[part], part)
        options = params.caption_options() | {"model": model_id, "input_names": names}
        checked = state.checker.check(paths, options)
        provenance = {"job_id": job_id, "dates": params.dates.model_dump() if params.dates else None,
                      "labels": params.labels, "uploads": names}
        return Job(id=job_id, dir=job_dir, model=model_id, options=options, provenance=provenance,
                   tiles_total=checked.tiles_total, warnings=checked.warnings)

    def _check_gsd(gsd: float) -> None:
        if gsd < settings.min_gsd_m:
            raise ApiError(422, f"params.gsd = {gsd:g}: finer than this server's minimum of {settings.min_gsd_m:g} m "
                           "(hisem serve --min-gsd-m)", cap="min_gsd_m", limit=settings.min_gsd_m)
        if gsd > settings.max_gsd_m:
            raise ApiError(422, f"params.gsd = {gsd:g}: coarser than this server's maximum of "
                           f"{settings.max_gsd_m:g} m (hisem serve --max-gsd-m)", cap="max_gsd_m",
                           limit=settings.max_gsd_m)

    app.include_router(public)
    app.include_router(private)
    _document_params(app)
    return app


def _document_params(app: FastAPI) -> None:
    """Put ``JobParams`` in the OpenAPI components: ``params`` is a JSON string inside multipart."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            params = JobParams.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(params.pop("$defs", {}))
            components["JobParams"] = params
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

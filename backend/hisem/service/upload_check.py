"""The submission check of two uploads, in a short-lived child process: the API process decodes no pixel.

Opening a GeoTIFF an anonymous client wrote, reading its first and last blocks, sampling it for
nodata: all GDAL native code. In the API process a decompression bomb cost ~1 GB per request and
a crash would take the service down. Here a fresh ``python -m hisem.service.upload_check`` (one kept
ready, imports done, so that a submission does not wait for Python to start) does it
under an address-space limit (``check_memory_mb``) and a CPU-time limit (``check_cpu_s``: CPU
time, not wall time, so that a busy machine does not refuse honest files), after the declared
sizes were capped from the header; at most ``check_concurrency`` run at once. It answers
one JSON line: the tile count and warnings, or the 4xx to give (paths already scrubbed).

What it checks, in order: GeoTIFF only; the pipeline's own ``plan_run`` (caps on declared block
and raster sizes, CRS, read check of the first and last blocks, bands, AOI, grid, tile count);
the source pixels per tile against ``max_tile_megapixels``; nodata over the working extent.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hisem.service.errors import ApiError, describe_exit, scrub_paths
from hisem.service.settings import ServiceSettings, raster_limits

log = logging.getLogger(__name__)

GEOTIFF_ONLY = ["GTiff"]  # GeoTIFF bytes only: a VRT or similar could make GDAL read server files
# The child's GDAL and allocator: a small block cache, one thread, two malloc arenas (each arena
# reserves address space, which the limit counts).
CHILD_ENV = {"GDAL_CACHEMAX": "64", "GDAL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
             "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
WALL_TIMEOUT_S = 600.0  # a child still running after this is stuck, or the machine is overloaded


@dataclass(frozen=True)
class CheckedUploads:
    tiles_total: int
    warnings: list[str]


class UploadChecker:
    """Runs the child check, ``settings.check_concurrency`` at a time.

    One child is kept ready, its imports (numpy, GDAL, ONNX Runtime: ~0.5 s of CPU) done, waiting
    for a request on stdin: a submission does not wait for a Python to start. Each child checks once.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._slots = threading.BoundedSemaphore(settings.check_concurrency)
        self._lock = threading.Lock()
        self._ready: subprocess.Popen[str] | None = None
        self._open = False

    def start(self) -> None:
        with self._lock:
            self._open = True
            self._ready = _spawn()

    def close(self) -> None:
        with self._lock:
            self._open, ready, self._ready = False, self._ready, None
        if ready is not None:
            ready.kill()
            ready.communicate()

    def _take(self) -> subprocess.Popen[str]:
        """The ready child (a fresh one if it died or there is none); its successor starts warming up."""
        with self._lock:
            child, self._ready = self._ready, _spawn() if self._open else None
        return child if child is not None and child.poll() is None else _spawn()

    def check(self, paths: dict[str, Path], options: dict[str, Any]) -> CheckedUploads:
        """The job's tile count and warnings; ApiError (4xx, path-free) for anything unusable."""
        request = {"paths": {role: str(path) for role, path in paths.items()}, "options": options,
                   "caps": self.settings.caps()}
        with self._slots:
            child = self._take()
            try:
                stdout, stderr = child.communicate(json.dumps(request), timeout=WALL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                raise ApiError(503, f"checking the uploads took longer than {WALL_TIMEOUT_S:g} s: the server is "
                               "overloaded; retry later", headers={"Retry-After": "60"}) from None
        answer = _last_json_line(stdout)
        if child.returncode == -signal.SIGXCPU:  # the kernel's answer to RLIMIT_CPU
            cpu = self.settings.check_cpu_s
            raise ApiError(413, f"checking the uploads needed more than {cpu:g} s of CPU time, this server's limit "
                           "(hisem serve --check-cpu-s): send smaller or simpler files", cap="check_cpu_s", limit=cpu)
        if answer is None:
            reason = describe_exit(child.returncode)
            log.warning("upload check died (%s): %s", reason, stderr[-2000:])
            raise ApiError(422, f"the uploads could not be checked: the checking process died ({reason}); the "
                           "files are damaged, or made to exhaust the server")
        if "error" in answer:
            raise ApiError(**answer["error"])
        return CheckedUploads(answer["tiles_total"], answer["warnings"])


def _spawn() -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hisem.service.upload_check"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **CHILD_ENV})


def _last_json_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        return answer if isinstance(answer, dict) else None
    return None


# ---------------------------------------------------------------------------------------------
# Inside the child


def _check(paths: dict[str, str], options: dict[str, Any], caps: dict[str, float]) -> CheckedUploads:
    from osgeo import gdal

    from hisem.geo import TooManyTilesError, select_bands
    from hisem.geo.bands import sample_valid_values
    from hisem.geo.raster import RasterLimits, open_dataset, tile_source_pixels
    from hisem.pipeline import CaptionOptions, plan_run

    for role, path in paths.items():
        if gdal.IdentifyDriverEx(path, gdal.OF_RASTER, allowed_drivers=GEOTIFF_ONLY) is None:
            raise ApiError(422, f"{role}: not a GeoTIFF (the service takes GeoTIFF bytes only)")
    limits = RasterLimits(**raster_limits(caps))
    client_tiles, server_tiles = int(options["max_tiles"]), int(caps["max_tiles"])
    try:
        plan = plan_run(paths["before"], paths["after"],
                        CaptionOptions(**{**options, "max_tiles": min(client_tiles, server_tiles)},
                                       raster_limits=limits))
    except TooManyTilesError as exc:
        if exc.count > server_tiles and server_tiles < client_tiles:
            raise ApiError(413, f"the AOI makes {exc.count} tiles, more than this server's cap of {server_tiles} "
                           "tiles per job (hisem serve --max-tiles): use a smaller AOI or a coarser GSD",
                           cap="max_tiles", limit=server_tiles) from None
        raise ApiError(422, f"{exc} (params.max_tiles)") from None
    budget = caps["max_tile_megapixels"] * 1e6
    for role, info in (("before", plan.before), ("after", plan.after)):
        pixels = tile_source_pixels(info, plan.tile_size, plan.grid.gsd)
        if pixels > budget:
            raise ApiError(413, f"{role}: each {plan.tile_size} px tile at {plan.grid.gsd:g} m would read "
                           f"{pixels / 1e6:,.0f} megapixels of it (native GSD {info.gsd_m:.3g} m, no overview coarse "
                           f"enough), more than this server's cap of {caps['max_tile_megapixels']:g} megapixels per "
                           "tile (hisem serve --max-tile-megapixels): choose a GSD closer to its own, build "
                           "overviews (gdaladdo), or send it resampled to the working GSD",
                           cap="max_tile_megapixels", limit=caps["max_tile_megapixels"])
    for role, info in (("before", plan.before), ("after", plan.after)):  # known now, not after the queue
        try:  # the stretch's sample: all nodata? a damaged block? (the whole extent when it is small)
            sample_valid_values(open_dataset(info.path), info, plan.grid, select_bands(info, options.get("bands")))
        except RuntimeError as exc:
            raise ApiError(422, f"{role}: its pixels cannot be read (a damaged block?): {exc}") from None
    return CheckedUploads(len(plan.tiles), list(plan.warnings))


def _error_answer(exc: BaseException, paths: dict[str, str], caps: dict[str, float]) -> ApiError:
    """The 4xx for an exception of the check, its message free of server paths."""
    from hisem.geo import GEO_ERRORS
    from hisem.geo.errors import LimitError, OptionError

    def clean(message: str) -> str:
        return scrub_paths(message, paths, Path(paths["before"]).parent)

    if isinstance(exc, ApiError):
        exc.detail = clean(exc.detail)
        return exc
    if isinstance(exc, OptionError):
        return ApiError(422, f"params.{exc.option} = {json.dumps(exc.value)}: {exc.reason}")
    if isinstance(exc, LimitError):
        return ApiError(413, f"{clean(str(exc))} (hisem serve --{exc.cap.replace('_', '-')})", cap=exc.cap,
                        limit=exc.limit)
    if isinstance(exc, (*GEO_ERRORS, FileNotFoundError)):
        return ApiError(422, clean(str(exc)))
    if isinstance(exc, MemoryError):
        limit = caps["check_memory_mb"]
        return ApiError(413, f"reading the uploads needs more than {limit:g} MiB, this server's limit (hisem serve "
                        "--check-memory-mb)", cap="check_memory_mb", limit=limit)
    if isinstance(exc, RuntimeError):  # GDAL's own errors: a block that does not decode, ...
        return ApiError(422, f"the uploads cannot be read: {clean(str(exc))}")
    return ApiError(422, f"the uploads could not be checked: {type(exc).__name__}: {clean(str(exc))}")


def main() -> int:
    """Import, wait for the request on stdin, check under the limits, print one JSON line (exit code 0)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s upload check: %(message)s")
    # The imports a ready child has done before its request (hisem.geo also turns GDAL exceptions on).
    import hisem.geo
    import hisem.geo.bands
    import hisem.pipeline  # noqa: F401

    text = sys.stdin.read()
    if not text:  # the server stopped before it needed this child
        return 0
    request = json.loads(text)
    paths, caps = request["paths"], request["caps"]
    limit = int(caps["check_memory_mb"] * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = math.ceil(caps["check_cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL a second later
    try:
        checked = _check(paths, request["options"], caps)
        answer: dict[str, Any] = {"tiles_total": checked.tiles_total,
                                  "warnings": [scrub_paths(w, paths, Path(paths["before"]).parent)
                                               for w in checked.warnings]}
    except Exception as exc:  # MemoryError included: every verdict is an answer
        error = _error_answer(exc, paths, caps)
        answer = {"error": {"status": error.status, **error.body()}}
    sys.stdout.write(json.dumps(answer) + "\n")  # the one line the server reads
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The HTTP side of ``diffmatte serve``: routes, form parsing, limits and error answers.

Every error a client can cause is answered with a 4xx status (503 when busy) and the JSON body
``{"error": "<one line>"}``; tracebacks go to the server log only. The request body limit, the
in-flight limit and a first queue check run before the body is read.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import tempfile
from dataclasses import dataclass
from importlib import resources
from typing import Any, AsyncIterator, Awaitable, BinaryIO, Callable, cast

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ..errors import DiffMatteError
from ..refine import Box
from ..writers import to_uint8
from .engine import (
    Busy,
    Cancelled,
    Engine,
    JobContext,
    MatteRequest,
    RefineRequest,
    ServerConfig,
    TimeLimitExceeded,
    TooLarge,
    Unavailable,
    encode_png,
)

__all__ = ["create_app", "ApiError"]

_log = logging.getLogger("diffmatte.server")
_STATIC = resources.files("diffmatte.server") / "static"
# The page loads nothing from elsewhere; the policy makes the browser enforce it.
_HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_FILE_FIELDS = ("image", "trimap", "alpha")
_MAX_FIELD_BYTES = 64 * 1024
# Uploads above this stay on disk until the worker decodes them, so requests waiting in the
# queue hold no large files in memory.
_SPOOL_BYTES = 1 << 20


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class _BodyTooLarge(Exception):
    pass


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # One line: a message with newlines would break log lines and clients' error displays.
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)


def _mapped(exc: BaseException) -> ApiError:
    """The status and message a job's exception is answered with."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, HTTPException):
        return ApiError(exc.status_code, str(exc.detail))
    if isinstance(exc, Busy):
        return ApiError(503, str(exc), {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, (TimeLimitExceeded, Unavailable)):
        return ApiError(503, str(exc))
    if isinstance(exc, Cancelled):
        return ApiError(400, str(exc))
    if isinstance(exc, TooLarge):
        if exc.limit:  # a pixel limit: said as this server's, which an operator can raise
            return ApiError(413, f"{exc.subject} is {exc.width}x{exc.height} = {exc.width * exc.height} pixels, over "
                                 f"this server's limit of {exc.limit} (diffmatte serve --max-pixels)")
        return ApiError(413, str(exc))
    if isinstance(exc, DiffMatteError):
        return ApiError(400, str(exc))
    _log.error("internal error", exc_info=exc)
    return ApiError(500, f"internal error ({type(exc).__name__}); the server log has the details")


# -- limits, before the body is read ------------------------------------------------------------
class LimitsMiddleware:
    """Refuses API requests whose body is too large (413), or when too many are in flight or
    the queue is full (503 + Retry-After), without reading the body."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        cfg = self.engine.config
        limit = cfg.max_upload_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await error_response(400, "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > limit:
                await self._too_large(scope, receive, send)
                return
        if self.in_flight >= cfg.max_in_flight or not self.engine.has_room():
            busy = self.engine.busy_error()
            headers = {"Retry-After": str(busy.retry_after)}
            await error_response(503, str(busy), headers)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body without Content-Length
                    raise _BodyTooLarge()
            return message

        self.in_flight += 1
        try:
            await self.app(scope, limited, send)
        finally:
            self.in_flight -= 1

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        mib = self.engine.config.max_upload_bytes / 2**20
        await error_response(
            413, f"request body over this server's upload limit of {mib:g} MiB (diffmatte serve --max-upload-mb)"
        )(scope, receive, send)


# -- request parsing ----------------------------------------------------------------------------
@dataclass
class Form:
    fields: dict[str, str]
    files: dict[str, BinaryIO]

    def file(self, name: str, required: bool = True) -> BinaryIO | None:
        if name in self.files:
            return self.files[name]
        if name in self.fields:
            raise ApiError(
                400,
                f"{name} must be an uploaded file (a multipart file field, e.g. curl -F {name}=@file.png); "
                "the server never reads paths",
            )
        if required:
            raise ApiError(400, f"missing the file field {name!r} (multipart/form-data, e.g. curl -F {name}=@file.png)")
        return None

    def integer(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        raw = self.fields.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an integer, got {raw[:40]!r}") from None
        if not lo <= value <= hi:
            raise ApiError(400, f"{name} must lie in {lo}..{hi}, got {value}")
        return value

    def flag(self, name: str) -> bool:
        """An on/off field: 1/true/on or 0/false/off (absent or empty: off)."""
        raw = (self.fields.get(name) or "0").strip().lower()
        if raw in ("1", "true", "on", "yes"):
            return True
        if raw in ("0", "false", "off", "no"):
            return False
        raise ApiError(400, f"{name} must be 1 or 0 (true or false), got {raw[:40]!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.fields.get(name) or default
        if value not in choices:
            raise ApiError(400, f"{name} must be one of {', '.join(choices)}, got {value[:40]!r}")
        return value


async def _spool(upload: UploadFile) -> BinaryIO:
    """The upload copied to a temporary file of our own (in memory up to _SPOOL_BYTES, on disk
    above), which lives as long as the request does; the parser's own is closed with the form."""
    spooled = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    while chunk := await upload.read(1 << 20):
        spooled.write(chunk)
    spooled.seek(0)
    return cast(BinaryIO, spooled)


async def read_form(request: Request) -> Form:
    """Query parameters and multipart fields (a form field wins); each file copied to a
    temporary file (on disk when large: _spool), so the parser's are closed before any work."""
    ctype = request.headers.get("content-type", "")
    fields: dict[str, str] = dict(request.query_params)
    files: dict[str, BinaryIO] = {}
    if not ctype.startswith("multipart/form-data"):
        raise ApiError(
            415 if ctype else 400,
            f"send multipart/form-data (got {ctype.split(';')[0] or 'no content type'}), e.g. curl -F image=@photo.jpg",
        )
    try:
        async with request.form(max_files=len(_FILE_FIELDS), max_fields=32, max_part_size=_MAX_FIELD_BYTES) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key not in _FILE_FIELDS:
                        raise ApiError(400, f"unexpected file field {key!r}; files go in {', '.join(_FILE_FIELDS)}")
                    if key in files:
                        raise ApiError(400, f"the file field {key!r} is given twice")
                    files[key] = await _spool(value)
                else:
                    fields[key] = value
    except _BodyTooLarge:
        mib = request.app.state.engine.config.max_upload_bytes / 2**20
        raise ApiError(413, f"request body over this server's upload limit of {mib:g} MiB") from None
    except MultiPartException as e:
        raise ApiError(400, f"malformed multipart body: {e.message}") from None
    except HTTPException as e:  # Starlette's parser reports some malformed bodies this way
        raise ApiError(e.status_code, f"malformed multipart body: {e.detail}") from None
    return Form(fields, files)


def _box(form: Form) -> Box:
    raw = form.fields.get("box")
    if not raw:
        raise ApiError(400, "missing the field 'box': the edit's left,top,right,bottom in pixels")
    try:
        parts = [int(p) for p in raw.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise ApiError(400, f"box must be four integers left,top,right,bottom, got {raw[:60]!r}")
    return Box(*parts)


# -- endpoints ----------------------------------------------------------------------------------
class FrameBuffer:
    """What /api/matte/stream has produced and its client has not read yet, bounded.

    Every step's frame is a full-size PNG: a client that reads slower than the steps come would
    make the server hold all of them. Beyond ``max_frames`` waiting frames the oldest is dropped
    (the page shows the newest anyway); the final matte, an error and the end mark are never
    dropped. Used from the event loop only (the worker hands items over with call_soon_threadsafe).
    """

    def __init__(self, max_frames: int = 4) -> None:
        self.max_frames = max_frames
        self._items: collections.deque[dict[str, Any] | BaseException | None] = collections.deque()
        self._ready = asyncio.Event()

    @staticmethod
    def _is_frame(item: object) -> bool:
        return isinstance(item, dict) and "step" in item

    def put(self, item: dict[str, Any] | BaseException | None) -> None:
        self._items.append(item)
        frames = [x for x in self._items if self._is_frame(x)]
        if len(frames) > self.max_frames:
            self._items.remove(frames[0])
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self) -> dict[str, Any] | BaseException | None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


def _steps_and_seed(form: Form, cfg: ServerConfig) -> tuple[int, int]:
    steps = form.integer("steps", cfg.default_steps, 1, cfg.max_sample_steps) or cfg.default_steps
    return steps, form.integer("seed", 0, 0, 2**63 - 1) or 0


def _matte_request(form: Form, cfg: ServerConfig) -> MatteRequest:
    steps, seed = _steps_and_seed(form, cfg)
    return MatteRequest(
        image=form.file("image") or b"",
        trimap=form.file("trimap", required=False),
        steps=steps,
        seed=seed,
        band=form.integer("band", None, 1, 1000),
        seeds=form.integer("seeds", 1, 1, cfg.max_seeds) or 1,
    )


def _refine_request(form: Form, cfg: ServerConfig) -> RefineRequest:
    steps, seed = _steps_and_seed(form, cfg)
    return RefineRequest(
        image=form.file("image") or b"",
        trimap=form.file("trimap") or b"",
        alpha=form.file("alpha") or b"",
        box=_box(form),
        steps=steps,
        seed=seed,
        window=form.integer("window", 512, 32, 8192) or 512,
    )


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


class _Api:
    """The endpoints: each parses its request (a 400 names the field), hands a job to the
    engine's worker and answers with what the job returns."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.cfg = engine.config
        self.model_name = model_name

    async def _run(self, fn: Callable[[JobContext], Any]) -> Any:
        future, ctx = self.engine.submit(fn)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            ctx.cancelled.set()
            raise

    async def health(self, request: Request) -> Response:
        cfg, engine = self.cfg, self.engine
        return JSONResponse(
            {
                "status": "ok",
                "model": self.model_name,
                "preset": engine.model.config.name,
                "version": __version__,
                "running": engine.running,
                "queued": engine.queued,
                "queue_size": cfg.queue_size,
                "max_pixels": cfg.max_pixels,
                "max_upload_bytes": cfg.max_upload_bytes,
                "max_sample_steps": cfg.max_sample_steps,
                "default_steps": cfg.default_steps,
                "max_seeds": cfg.max_seeds,
                "time_limit": cfg.time_limit,
            }
        )

    async def matte(self, request: Request) -> Response:
        form = await read_form(request)
        req = _matte_request(form, self.cfg)
        output = form.choice("output", "alpha", ("alpha", "cutout", "uncertainty"))
        if output == "uncertainty" and req.seeds < 2:
            raise ApiError(400, "output=uncertainty is the spread of several samples: send seeds of 2 or more")
        background = form.fields.get("background") or None
        despill = form.flag("despill")
        engine = self.engine

        def job(ctx: JobContext) -> bytes:
            image, alpha, spread = engine.matte(ctx, req, uncertainty=output == "uncertainty")
            if spread is not None:
                return engine.uncertainty_png(spread)
            if output == "alpha":
                return encode_png(to_uint8(alpha))
            return engine.render_cutout(image, alpha, background, despill)

        png = await self._run(job)
        return Response(png, media_type="image/png", headers={"X-Diffmatte-Steps": str(req.steps)})

    async def matte_stream(self, request: Request) -> Response:
        form = await read_form(request)
        req = _matte_request(form, self.cfg)
        loop = asyncio.get_running_loop()
        items = FrameBuffer()
        engine = self.engine

        def put(item: dict[str, Any] | BaseException | None) -> None:
            loop.call_soon_threadsafe(items.put, item)

        def job(ctx: JobContext) -> None:
            try:
                _, alpha, spread = engine.matte(
                    ctx,
                    req,
                    on_frame=lambda k, f: put({"step": k + 1, "steps": req.steps, "alpha": _b64(encode_png(to_uint8(f)))}),
                    uncertainty=req.seeds > 1,
                )
                done: dict[str, Any] = {"done": True, "steps": req.steps, "alpha": _b64(encode_png(to_uint8(alpha)))}
                if spread is not None:  # with several seeds: where the matte is unsure, and where to paint
                    done["uncertainty"] = _b64(engine.uncertainty_png(spread))
                    done["suggestions"] = engine.suggestions(spread)
                put(done)
            except BaseException as e:
                put(e)
                raise
            put(None)

        _, ctx = engine.submit(job)
        first = await items.get()
        if isinstance(first, BaseException):
            raise _mapped(first)

        async def lines() -> AsyncIterator[bytes]:
            item = first
            try:
                while item is not None:
                    if isinstance(item, BaseException):
                        yield (json.dumps({"error": str(_mapped(item))}) + "\n").encode()
                        return
                    yield (json.dumps(item) + "\n").encode()
                    item = await items.get()
            finally:
                ctx.cancelled.set()  # the client left early: stop at the next step

        return StreamingResponse(lines(), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})

    async def trimap(self, request: Request) -> Response:
        form = await read_form(request)
        image = form.file("image") or b""
        band = form.integer("band", None, 1, 1000)
        png = await self._run(lambda ctx: self.engine.trimap_png(ctx, image, band))
        return Response(png, media_type="image/png")

    async def refine(self, request: Request) -> Response:
        req = _refine_request(await read_form(request), self.cfg)
        engine = self.engine

        def job(ctx: JobContext) -> tuple[bytes, Box]:
            alpha, win = engine.refine(ctx, req)
            return encode_png(to_uint8(alpha)), win

        png, win = await self._run(job)
        window = f"{win.left},{win.top},{win.right},{win.bottom}"
        return Response(png, media_type="image/png", headers={"X-Diffmatte-Window": window})

    async def cutout(self, request: Request) -> Response:
        form = await read_form(request)
        image, alpha = form.file("image") or b"", form.file("alpha") or b""
        background = form.fields.get("background") or None
        despill = form.flag("despill")
        png = await self._run(lambda ctx: self.engine.cutout_png(ctx, image, alpha, background, despill))
        return Response(png, media_type="image/png")


def _answered(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """An API endpoint whose every exception becomes its JSON error answer (_mapped logs bugs)."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as e:
            m = _mapped(e)
            return error_response(m.status, str(m), m.headers)

    return wrapped


async def _index(request: Request) -> Response:
    return FileResponse(str(_STATIC / "index.html"), headers=_HTML_HEADERS)


async def _http_error(request: Request, exc: Exception) -> Response:
    # outside the API routes (404, 405, static files), in the same one-line JSON
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")


def create_app(engine: Engine, model_name: str) -> ASGIApp:
    """The ASGI app of ``diffmatte serve`` around a running engine."""
    api = _Api(engine, model_name)
    routes = [
        Route("/", _index),
        Route("/api/health", api.health),
        Route("/api/matte", _answered(api.matte), methods=["POST"]),
        Route("/api/matte/stream", _answered(api.matte_stream), methods=["POST"]),
        Route("/api/trimap", _answered(api.trimap), methods=["POST"]),
        Route("/api/refine", _answered(api.refine), methods=["POST"]),
        Route("/api/cutout", _answered(api.cutout), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(_STATIC)), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _internal_error})
    app.state.engine = engine
    return LimitsMiddleware(app, engine)

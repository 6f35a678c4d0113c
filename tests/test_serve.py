"""`diffmatte serve`: the HTTP API (results equal the library's, every error a one-line JSON 4xx/503),
its limits, paint-to-refine's windowed re-matting, the CLI, and a bounded load test."""
from __future__ import annotations

import base64
import http.client
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from diffmatte import DiffMatte
from diffmatte.errors import InputError
from diffmatte.refine import Box, blend_weights, choose_window, edit_box, refine_window

from .serve_helpers import Reply, multipart, png, request

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")

from diffmatte.server import BackgroundServer, ServerConfig  # noqa: E402

from .helpers import band_trimap, random_image

HAS_AUTO = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("rembg") is not None
H, W = 48, 64
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # The tiny model's ops are too small to split across threads (see test_cli_predict.py).
    torch.set_num_threads(1)


def _image(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return random_image(h, w, seed)


def _trimap(h: int = H, w: int = W) -> np.ndarray:
    return band_trimap(h, w)


def _u8(alpha: np.ndarray) -> np.ndarray:
    from diffmatte.writers import to_uint8

    return to_uint8(alpha)


@pytest.fixture(scope="module")
def server(tiny_vit: DiffMatte) -> Iterator[BackgroundServer]:
    config = ServerConfig(port=0, max_pixels=200_000, max_upload_bytes=3 * 2**20, queue_size=8)
    with BackgroundServer(config, tiny_vit, "tiny") as s:
        yield s


def _expected(tiny_vit: DiffMatte, image: np.ndarray, trimap: np.ndarray, steps: int, seed: int) -> np.ndarray:
    return _u8(tiny_vit.predict(image, trimap, steps, seed))


# -- the API: results ---------------------------------------------------------------------------
def test_health(server: BackgroundServer) -> None:
    r = request(server.url + "/api/health")
    assert r.status == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"] == "tiny" and body["preset"] == "tiny_vit"
    assert body["version"] == __import__("diffmatte").__version__


def test_matte_equals_predict(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    image, trimap = _image(), _trimap()
    r = request(server.url + "/api/matte?steps=3", {"seed": 5}, {"image": png(image), "trimap": png(trimap)})
    assert r.status == 200 and r.headers["content-type"] == "image/png"
    got = r.image()
    assert got.shape == (H, W) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, _expected(tiny_vit, image, trimap, 3, 5))
    # seed matters, so the equality above is not an accident of the model ignoring noise
    other = request(server.url + "/api/matte?steps=3&seed=6", files={"image": png(image), "trimap": png(trimap)})
    assert not np.array_equal(other.image(), got)


def test_seeds_and_uncertainty_equal_predict(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    image, trimap = _image(seed=7), _trimap()
    files = {"image": png(image), "trimap": png(trimap)}
    mean = request(server.url + "/api/matte", {"steps": 2, "seed": 1, "seeds": 3}, files)
    spread = request(server.url + "/api/matte", {"steps": 2, "seed": 1, "seeds": 3, "output": "uncertainty"}, files)
    assert mean.status == 200 and spread.status == 200
    alpha, std = tiny_vit.predict(image, trimap, 2, 1, seeds=3, uncertainty=True)
    np.testing.assert_array_equal(mean.image(), _u8(alpha))
    np.testing.assert_array_equal(spread.image(), _u8(2 * std))
    assert (spread.image()[trimap != 128] == 0).all() and spread.image().max() > 0


def test_stream_with_seeds_ends_with_the_uncertainty_and_where_to_paint(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    image, trimap = _image(seed=8), _trimap()
    r = request(server.url + "/api/matte/stream", {"steps": 2, "seed": 1, "seeds": 3}, {"image": png(image), "trimap": png(trimap)})
    last = json.loads(r.body.decode().splitlines()[-1])
    alpha, u = tiny_vit.predict(image, trimap, 2, 1, seeds=3, uncertainty=True)
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(last["uncertainty"]))))
    np.testing.assert_array_equal(shown, _u8(2 * u))
    assert last["suggestions"] and all(len(b) == 4 for b in last["suggestions"])
    one = request(server.url + "/api/matte/stream", {"steps": 2}, {"image": png(image), "trimap": png(trimap)})
    assert "uncertainty" not in json.loads(one.body.decode().splitlines()[-1])  # one seed: no map


def test_cutout_outputs(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    image, trimap = _image(), _trimap()
    files = {"image": png(image), "trimap": png(trimap)}
    rgba = request(server.url + "/api/matte", {"steps": 2, "output": "cutout"}, files).image()
    assert rgba.shape == (H, W, 4)
    np.testing.assert_array_equal(rgba[..., 3], _expected(tiny_vit, image, trimap, 2, 0))
    rgb = request(server.url + "/api/matte", {"steps": 2, "output": "cutout", "background": "#00ff00"}, files).image()
    assert rgb.shape == (H, W, 3)
    assert (rgb[:, 0] == [0, 255, 0]).all()  # background columns of the trimap show the colour
    alpha_png = png(_expected(tiny_vit, image, trimap, 2, 0))
    again = request(server.url + "/api/cutout", files={"image": png(image), "alpha": alpha_png}).image()
    np.testing.assert_array_equal(again, rgba)
    # despill=1: the cutout's colours without the old background's hue (as predict --despill)
    from diffmatte.foreground import cutout

    despilled = request(server.url + "/api/cutout", {"despill": "1"}, {"image": png(image), "alpha": alpha_png}).image()
    expected = _u8(cutout(image, np.asarray(Image.open(io.BytesIO(alpha_png))) / 255.0, despill=True))
    np.testing.assert_array_equal(despilled, expected)
    direct = request(server.url + "/api/matte", {"steps": 2, "output": "cutout", "despill": "true"}, files).image()
    np.testing.assert_array_equal(direct, despilled)
    bad = request(server.url + "/api/cutout", {"despill": "maybe"}, {"image": png(image), "alpha": alpha_png})
    assert bad.status == 400 and "despill must be 1 or 0" in bad.error()


def test_stream_sends_every_step_then_the_matte(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    image, trimap = _image(seed=3), _trimap()
    r = request(server.url + "/api/matte/stream", {"steps": 4, "seed": 2}, {"image": png(image), "trimap": png(trimap)})
    assert r.status == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.body.decode().splitlines()]
    assert [x.get("step") for x in lines[:-1]] == [1, 2, 3, 4] and lines[-1]["done"] is True

    def decode(item: dict) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(item["alpha"]))))

    frames = tiny_vit.predict(image, trimap, 4, 2, trajectory=True)
    for item, frame in zip(lines[:-1], frames, strict=True):
        np.testing.assert_array_equal(decode(item), _u8(frame))
    full = request(server.url + "/api/matte", {"steps": 4, "seed": 2}, {"image": png(image), "trimap": png(trimap)})
    np.testing.assert_array_equal(decode(lines[-1]), full.image())


@pytest.mark.skipif(not HAS_AUTO, reason="automatic trimaps need diffmatte[auto]")
def test_automatic_trimap(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    from diffmatte.trimap import auto_trimap

    image = np.asarray(Image.open(REPO / "examples" / "lemur.jpg").resize((170, 110)))
    data = png(image)
    tri = request(server.url + "/api/trimap", {"band": 4}, {"image": data})
    assert tri.status == 200
    expected_tri = auto_trimap(image.astype(np.float32) / 255, 4)
    np.testing.assert_array_equal(tri.image(), np.select([expected_tri == 0, expected_tri == 1], [0, 255], 128))
    r = request(server.url + "/api/matte", {"steps": 2, "band": 4}, {"image": data})
    assert r.status == 200
    np.testing.assert_array_equal(r.image(), _expected(tiny_vit, image, tri.image(), 2, 0))


def test_refine_changes_only_the_window(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    h, w = 96, 128
    image, trimap = _image(h, w, seed=4), _trimap(h, w)
    before = _expected(tiny_vit, image, trimap, 2, 1)
    edited = trimap.copy()
    edited[40:48, 70:78] = 255
    fields = {"steps": 2, "seed": 1, "box": "70,40,78,48", "window": 32}
    files = {"image": png(image), "trimap": png(edited), "alpha": png(before)}
    r = request(server.url + "/api/refine", fields, files)
    assert r.status == 200, r.body
    left, top, right, bottom = map(int, r.headers["x-diffmatte-window"].split(","))
    assert left <= 70 - 16 and right >= 78 + 16 and top <= 40 - 16 and bottom >= 48 + 16
    got = r.image()
    outside = np.ones((h, w), bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(got[outside], before[outside])
    assert (got[40:48, 70:78] == 255).all()
    lib = refine_window(
        tiny_vit, image.astype(np.float32) / 255, _tri(edited), before.astype(np.float32) / 255, Box(70, 40, 78, 48),
        steps=2, seed=1, window=32,
    )
    np.testing.assert_array_equal(got, _u8(lib.alpha))


def _tri(t: np.ndarray) -> np.ndarray:
    return np.select([t == 0, t == 255], [0.0, 1.0], 0.5).astype(np.float32)


def test_sessions_do_not_mix(server: BackgroundServer, tiny_vit: DiffMatte) -> None:
    """Concurrent clients with different images each get the matte of their own image."""
    images = [_image(seed=10 + i) for i in range(6)]
    trimap = _trimap()

    def call(i: int) -> np.ndarray:
        files = {"image": png(images[i]), "trimap": png(trimap)}
        return request(server.url + "/api/matte", {"steps": 2, "seed": i}, files).image()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(call, range(6)))
    for i, got in enumerate(results):
        np.testing.assert_array_equal(got, _expected(tiny_vit, images[i], trimap, 2, i))


# -- the API: errors ----------------------------------------------------------------------------
def _post(server: BackgroundServer, path: str = "/api/matte", fields=None, files=None, **kw) -> Reply:  # noqa: ANN001
    return request(server.url + path, fields, files, **kw)


@pytest.mark.parametrize(
    "fields, files, status, pattern",
    [
        ({}, {"trimap": "T"}, 400, r"missing the file field 'image'"),
        ({"image": "/etc/passwd"}, {"trimap": "T"}, 400, r"image must be an uploaded file.*never reads paths"),
        ({}, {"image": b"not an image", "trimap": "T"}, 400, r"image: not a readable image"),
        ({}, {"image": b"", "trimap": "T"}, 400, r"image: the upload is empty"),
        ({}, {"image": "I", "trimap": b"\x89PNG broken"}, 400, r"trimap: not a readable image"),
        ({}, {"image": "small", "trimap": "smallT"}, 400, r"both sides must be at least 32 px"),
        ({}, {"image": "I", "trimap": "otherT"}, 400, r"trimap is 40x40 but the image is 64x48"),
        ({"steps": "0"}, {"image": "I", "trimap": "T"}, 400, r"steps must lie in 1\.\.100, got 0"),
        ({"steps": "ten"}, {"image": "I", "trimap": "T"}, 400, r"steps must be an integer"),
        ({"seed": "-1"}, {"image": "I", "trimap": "T"}, 400, r"seed must lie in 0\.\."),
        ({"output": "jpeg"}, {"image": "I", "trimap": "T"}, 400, r"output must be one of alpha, cutout"),
        ({"output": "cutout", "background": "/etc/hosts"}, {"image": "I", "trimap": "T"}, 400, r"not a colour"),
        ({"output": "uncertainty"}, {"image": "I", "trimap": "T"}, 400, r"send seeds of 2 or more"),
        ({"seeds": "9"}, {"image": "I", "trimap": "T"}, 400, r"seeds must lie in 1\.\.8, got 9"),
        ({}, {"image": "I", "trimap": "T", "mask": "T"}, 400, r"unexpected file field 'mask'"),
        ({}, {"image": "big", "trimap": "bigT"}, 413, r"over this server's limit of 200000"),
    ],
)
def test_bad_matte_requests(server: BackgroundServer, fields, files, status, pattern) -> None:  # noqa: ANN001
    blobs = {
        "I": png(_image()),
        "T": png(_trimap()),
        "small": png(_image(20, 64)),
        "smallT": png(_trimap(20, 64)),
        "otherT": png(_trimap(40, 40)),
        "big": png(_image(500, 500)),
        "bigT": png(_trimap(500, 500)),
    }
    files = {k: blobs[v] if isinstance(v, str) else v for k, v in files.items()}
    r = _post(server, fields={"steps": 1, **fields}, files=files)
    assert r.status == status, (r.status, r.body)
    assert re.search(pattern, r.error()), r.error()


def test_bad_refine_requests(server: BackgroundServer) -> None:
    files = {"image": png(_image()), "trimap": png(_trimap()), "alpha": png(_trimap())}
    r = _post(server, "/api/refine", {"box": "1,2,3"}, files)
    assert r.status == 400 and "box must be four integers" in r.error()
    r = _post(server, "/api/refine", {"box": "10,10,100,20"}, files)
    assert r.status == 400 and "inside the 64x48 image" in r.error()
    r = _post(server, "/api/refine", {}, files)
    assert r.status == 400 and "missing the field 'box'" in r.error()
    r = _post(server, "/api/refine", {"box": "1,1,5,5"}, {**files, "alpha": png(_trimap(40, 40))})
    assert r.status == 400 and "alpha is 40x40 but the image is 64x48" in r.error()


def test_a_refine_window_over_the_pixel_budget_is_refused(tiny_vit: DiffMatte) -> None:
    files = {"image": png(_image()), "trimap": png(_trimap()), "alpha": png(_trimap())}
    with BackgroundServer(ServerConfig(port=0, max_refine_pixels=3000), tiny_vit, "tiny") as s:
        r = _post(s, "/api/refine", {"box": "1,1,5,5", "steps": 1}, files)  # the window is the whole 64x48 image
        assert r.status == 413 and "the window to re-matte is 64x48 (0.0 MP), above this server's refine limit" in r.error()
        assert request(s.url + "/api/health").status == 200
    with BackgroundServer(ServerConfig(port=0, max_refine_pixels=3072), tiny_vit, "tiny") as s:
        assert _post(s, "/api/refine", {"box": "1,1,5,5", "steps": 1}, files).status == 200


def test_bad_http(server: BackgroundServer) -> None:
    r = request(server.url + "/api/matte", body=b"image=x", content_type="application/x-www-form-urlencoded")
    assert r.status == 415 and "send multipart/form-data" in r.error()
    r = request(server.url + "/api/matte", body=b"--xyz\r\nbroken", content_type="multipart/form-data; boundary=xyz")
    assert r.status == 400 and r.error()
    r = request(server.url + "/api/nothing")
    assert r.status == 404 and r.error()
    r = request(server.url + "/api/matte")  # GET
    assert r.status == 405 and r.error()
    assert request(server.url + "/api/health").status == 200  # still serving


def test_body_over_the_limit_is_refused_before_it_is_read(server: BackgroundServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    # Content-Length says 10 MiB and no body follows: the answer must come without it.
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /api/matte HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 10485760\r\n\r\n"
        )
        raw = b""
        while b"}" not in raw:  # headers and body may come in separate packets
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
        answer = raw.decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"error":"request body over this server\'s upload limit of 3 MiB' in answer
    # Chunked (no Content-Length): refused once the limit is passed.
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body, ctype = multipart({"steps": 1}, {"image": os.urandom(4 * 2**20)})
    conn.request("POST", "/api/matte", body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
                 headers={"Content-Type": ctype}, encode_chunked=True)
    try:
        resp = conn.getresponse()
        status, payload = resp.status, json.loads(resp.read())
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the server closed the connection without a 413 answer")
    assert status == 413 and "upload limit" in payload["error"]
    assert request(server.url + "/api/health").status == 200


def test_upload_temp_files_are_removed(server: BackgroundServer) -> None:
    """Uploads over 1 MiB are spooled to temporary files by the form parser; none may remain open."""
    def spooled() -> set[str]:
        fds = Path("/proc/self/fd")
        out = set()
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(tempfile.gettempdir()) or "(deleted)" in target:
                out.add(target)
        return out

    before = spooled()
    big_trimap = png(_image(700, 700)[..., 0])  # incompressible: about 1.5 MB
    r = _post(server, fields={"steps": 1}, files={"image": png(_image()), "trimap": big_trimap})
    assert r.status == 413  # 700x700 is over the pixel limit; the files were read and closed anyway
    time.sleep(0.2)
    assert spooled() <= before


@pytest.mark.parametrize("queue_size", [0, 1])
def test_busy_queue_answers_503_with_retry_after(tiny_vit: DiffMatte, queue_size: int) -> None:
    release = threading.Event()
    with BackgroundServer(ServerConfig(port=0, queue_size=queue_size), tiny_vit, "tiny") as s:
        s.engine.submit(lambda ctx: release.wait(30))  # running
        for _ in range(queue_size):
            s.engine.submit(lambda ctx: None)  # waiting: now the queue is full
        try:
            r = request(s.url + "/api/matte", {"steps": 1}, {"image": png(_image()), "trimap": png(_trimap())})
            assert r.status == 503 and int(r.headers["retry-after"]) >= 1
            assert "the server is busy" in r.error()
            assert request(s.url + "/api/health").status == 200
        finally:
            release.set()
        deadline = time.monotonic() + 10
        while (s.engine.running or s.engine.queued) and time.monotonic() < deadline:
            time.sleep(0.01)  # the blocked jobs finish
        r = request(s.url + "/api/matte", {"steps": 1}, {"image": png(_image()), "trimap": png(_trimap())})
        assert r.status == 200


def test_time_limit(tiny_vit: DiffMatte) -> None:
    files = {"image": png(_image()), "trimap": png(_trimap())}
    with BackgroundServer(ServerConfig(port=0, time_limit=0.3, max_sample_steps=1000), tiny_vit, "tiny") as s:
        t0 = time.monotonic()
        r = request(s.url + "/api/matte", {"steps": 1000}, files)
        assert r.status == 503 and "time limit of 0.3 s" in r.error()
        assert time.monotonic() - t0 < 3  # stopped between steps, not after all 1000
        release = threading.Event()
        s.engine.submit(lambda ctx: release.wait(0.6))  # the next request waits past its deadline
        r = request(s.url + "/api/matte", {"steps": 1}, files)
        assert r.status == 503 and "time limit" in r.error()
        assert request(s.url + "/api/matte", {"steps": 1}, files).status == 200


def test_index_page_is_self_contained(server: BackgroundServer) -> None:
    page = request(server.url + "/")
    assert page.status == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    html = page.body.decode()
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith("/static/") or ref.startswith("data:"), ref
        if ref.startswith("/static/"):
            assert request(server.url + ref).status == 200
    js = request(server.url + "/static/app.js").body.decode()
    assert "http://" not in js and "https://" not in js


# -- windowed re-matting (the library) ----------------------------------------------------------
def test_window_choice() -> None:
    # centred on the edit, then moved onto the 32 px grid (and grown a block where that cut the context)
    assert choose_window(Box(500, 300, 520, 310), 1000, 2000, 512, 64) == Box(224, 32, 736, 544)
    assert choose_window(Box(500, 300, 520, 310), 1000, 2000, 512, 64, align=1) == Box(254, 49, 766, 561)
    assert choose_window(Box(0, 0, 10, 10), 1000, 2000, 512, 64) == Box(0, 0, 512, 512)  # at a corner
    assert choose_window(Box(10, 10, 20, 20), 100, 300, 512, 64) == Box(0, 0, 300, 100)  # image smaller
    big = choose_window(Box(100, 100, 900, 200), 1000, 2000, 512, 64)  # a long edit: grown
    assert big == Box(32, 0, 992, 512)
    with pytest.raises(InputError, match="inside the 2000x1000 image"):
        choose_window(Box(0, 0, 3000, 10), 1000, 2000)
    w = blend_weights(Box(10, 0, 50, 30), 30, 100, feather=4)
    assert w[:, 0].max() == pytest.approx(0.2) and w[:, -1].max() == pytest.approx(0.2)
    assert (w[:, 4:-4] == 1).all() and (w[0, 4:-4] == 1).all()  # top is the image border: no ramp
    old = np.zeros((6, 6), np.float32)
    new = old.copy()
    new[2, 3] = 0.5
    assert edit_box(old, new) == Box(3, 2, 4, 3) and edit_box(old, old) is None


def test_refine_window_covering_the_image_is_a_full_run(tiny_vit: DiffMatte) -> None:
    image = _image().astype(np.float32) / 255
    trimap = _tri(_trimap())
    previous = np.full((H, W), 0.3, np.float32)
    out = refine_window(tiny_vit, image, trimap, previous, Box(20, 10, 30, 20), steps=3, seed=9, window=512)
    assert out.window == Box(0, 0, W, H)
    np.testing.assert_array_equal(out.alpha, tiny_vit.predict(image, trimap, 3, 9))


def test_a_refine_window_above_the_working_size_is_matted_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from diffmatte.fusion import FusionConfig

    torch.manual_seed(0)
    small = DiffMatte.from_config("tiny_vit")
    # a model that mattes at 1500 px (and fuses), as the default model does at 0.5 MP
    small.net.config = dataclasses.replace(small.config, working_megapixels=0.0015, fusion=FusionConfig())
    image = _image().astype(np.float32) / 255
    trimap = _tri(_trimap())
    previous = np.full((H, W), 0.3, np.float32)
    sizes: list[tuple[int, ...]] = []
    sample = small.sample
    monkeypatch.setattr(small, "sample", lambda img, *a, **k: (sizes.append(tuple(img.shape[-2:])), sample(img, *a, **k))[1])
    out = refine_window(small, image, trimap, previous, Box(20, 10, 30, 20), steps=2, seed=9, window=512)
    assert out.window == Box(0, 0, W, H) and sizes == [(34, 45)]  # working_shape(48, 64, 0.0015)
    np.testing.assert_array_equal(out.alpha, small.predict(image, trimap, 2, 9))  # the whole image: predict itself


def test_refine_window_exact_parts(tiny_vit: DiffMatte) -> None:
    h, w = 96, 160
    image = _image(h, w, seed=1).astype(np.float32) / 255
    trimap = _tri(_trimap(h, w))
    previous = np.random.default_rng(2).random((h, w)).astype(np.float32)
    edited = trimap.copy()
    edited[40:50, 60:70] = 1.0
    box = edit_box(trimap, edited)
    assert box == Box(60, 40, 70, 50)
    out = refine_window(tiny_vit, image, edited, previous, box, steps=2, seed=0, window=48, context=20, feather=8)
    win = out.window
    # edit + context is 50 px a side, more than the 48 asked: 64 px on the 32 px grid, grown by a
    # block where the grid cut the context (rows 64..70)
    assert (win.left, win.right) == (32, 96) and (win.top, win.bottom) == (0, 96)
    mask = np.ones((h, w), bool)
    mask[win.slices] = False
    np.testing.assert_array_equal(out.alpha[mask], previous[mask])  # outside: bit for bit
    inside = out.alpha[win.slices]
    tri = edited[win.slices]
    assert (inside[tri == 1] == 1).all() and (inside[tri == 0] == 0).all()
    # the core (past the ramp) is the window's own matte with the seed's full-image noise
    noise = torch.randn((1, 1, h, w), generator=torch.Generator().manual_seed(0))[..., win.slices[0], win.slices[1]]
    img_t = torch.from_numpy(image[win.slices].transpose(2, 0, 1).copy())[None]
    own = tiny_vit.sample(img_t, torch.from_numpy(tri.copy())[None, None], 2, noise=noise.contiguous()).alpha[0, 0].numpy()
    np.testing.assert_array_equal(inside[8:-8, 8:-8], own[8:-8, 8:-8])
    with pytest.raises(InputError, match="feather must lie in 0..context"):
        refine_window(tiny_vit, image, edited, previous, box, feather=30, context=20)


def test_predict_on_step_frames_equal_the_trajectory(tiny_vit: DiffMatte) -> None:
    image, trimap = _image(), _trimap()
    seen: list[tuple[int, np.ndarray]] = []
    alpha = tiny_vit.predict(image, trimap, 3, 4, on_step=lambda k, f: seen.append((k, f)))
    frames = tiny_vit.predict(image, trimap, 3, 4, trajectory=True)
    assert [k for k, _ in seen] == [0, 1, 2]
    for (_, f), g in zip(seen[:-1], frames[:-1], strict=True):
        np.testing.assert_array_equal(f, g)
    np.testing.assert_allclose(seen[-1][1], alpha, atol=1e-5)

    def stop(k: int, frame: np.ndarray) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        tiny_vit.predict(image, trimap, 3, 4, on_step=stop)


# -- the command and a load test ----------------------------------------------------------------
def _start(*args: str, env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO / "src")}
    env.update(env_extra or {})
    proc = subprocess.Popen(
        # fp32: the tests compare with the fp32 model in this process (auto is bf16 on some CPUs)
        [sys.executable, "-m", "diffmatte", "serve", "--port", "0", "--threads", "1", "--precision", "fp32", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    m = re.search(r"(http://\S+)/ ", line)
    if not m:
        proc.kill()
        raise AssertionError(f"no URL line: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, m.group(1)


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.slow
def test_cli_serve_warns_on_every_interface_and_refuses_a_busy_port(tiny_vit_file: Path) -> None:
    proc, url = _start("--model", str(tiny_vit_file), "--host", "0.0.0.0")
    try:
        assert request(url + "/api/health").json()["preset"] == "tiny_vit"
        port = url.rsplit(":", 1)[1]
        busy = subprocess.run(
            [sys.executable, "-m", "diffmatte", "serve", "--model", str(tiny_vit_file), "--host", "0.0.0.0", "--port", port],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=60,
        )
        assert busy.returncode == 2
        assert busy.stderr.strip().splitlines()[-1] == f"error: cannot listen on 0.0.0.0:{port}: the port is in use; pass another --port"
    finally:
        err = _stop(proc)
    assert "warning: listening on 0.0.0.0" in err


@pytest.mark.slow
def test_load_twenty_concurrent_requests(tiny_vit_file: Path, tiny_vit: DiffMatte) -> None:
    """Every request gets its matte or a 503 with Retry-After; the server stays up; memory stays bounded."""
    proc, url = _start("--model", str(tiny_vit_file), "--queue", "4")
    try:
        trimap = png(_trimap())
        # 100 steps (about 0.4 s a request here) so that the queue surely fills
        warm = request(url + "/api/matte", {"steps": 100}, {"image": png(_image()), "trimap": trimap})
        assert warm.status == 200
        rss_warm = _rss_kib(proc.pid, "VmRSS")
        images = [_image(seed=100 + i) for i in range(20)]

        def call(i: int) -> Reply:
            return request(url + "/api/matte", {"steps": 100, "seed": i}, {"image": png(images[i]), "trimap": trimap})

        with ThreadPoolExecutor(20) as pool:
            replies = list(pool.map(call, range(20)))
        ok = [i for i, r in enumerate(replies) if r.status == 200]
        busy = [r for r in replies if r.status == 503]
        assert len(ok) + len(busy) == 20, [r.status for r in replies]
        assert ok and busy  # one runs, four wait, the rest are refused at once
        for r in busy:
            assert int(r.headers["retry-after"]) >= 1 and "busy" in r.error()
        for i in ok:
            np.testing.assert_array_equal(replies[i].image(), _expected(tiny_vit, images[i], _trimap(), 100, i))
        assert request(url + "/api/health").status == 200
        peak = _rss_kib(proc.pid, "VmHWM")
        assert (peak - rss_warm) / 1024 < 150, f"peak RSS {peak / 1024:.0f} MiB vs {rss_warm / 1024:.0f} MiB warm"
    finally:
        _stop(proc)


def test_a_slow_stream_client_makes_the_server_hold_at_most_four_frames() -> None:
    import asyncio

    from diffmatte.server.app import FrameBuffer

    async def scenario() -> list:
        buf = FrameBuffer(max_frames=4)
        for k in range(1, 51):  # fifty steps come before the client reads anything
            buf.put({"step": k, "alpha": "x" * 1000})
            assert len(buf) <= 4
        buf.put({"done": True})
        buf.put(None)
        return [await buf.get() for _ in range(len(buf))]

    got = asyncio.run(scenario())
    # the newest frames, in order, then the final matte and the end mark, never dropped
    assert [x["step"] for x in got[:-2]] == [47, 48, 49, 50] and got[-2] == {"done": True} and got[-1] is None


# -- one session for the CLI and the server (issue 26 item 2) ------------------------------------
def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height and which holds no pixel data at all."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # the IDAT chunk is there (PIL opens the file up to it) but holds no valid stream
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x00" * 8) + chunk(b"IEND", b"")


def test_the_pixel_limit_is_checked_from_the_header_before_any_decoding(server: BackgroundServer) -> None:
    # Decoding first would fail on the missing pixel data (400 "not a readable image");
    # the header check answers 413 without touching it.
    huge = _png_declaring(12000, 12000)
    r = request(server.url + "/api/matte", files={"image": huge, "trimap": png(_trimap())})
    assert r.status == 413 and "image is 12000x12000 = 144000000 pixels, over this server's limit" in r.error()
    r = request(server.url + "/api/matte", files={"image": png(_image()), "trimap": huge})
    assert r.status == 413 and r.error().startswith("trimap is 12000x12000")
    small_but_empty = _png_declaring(64, 48)
    r = request(server.url + "/api/matte", files={"image": small_but_empty, "trimap": png(_trimap())})
    assert r.status == 400 and "image: not a readable image" in r.error()


def test_the_cli_and_the_server_load_through_one_session_and_decode_each_upload_once(
    server: BackgroundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import PIL.Image

    from diffmatte.cli.predict import Runner
    from diffmatte.server.engine import Engine
    from diffmatte.session import MattingSession

    assert "session" in Runner.__init__.__code__.co_names and "MattingSession" in Runner.__init__.__code__.co_names
    assert "MattingSession" in Engine.__init__.__code__.co_names
    opened: list[int] = []
    real_open = PIL.Image.open

    def counting_open(fp, *a, **k):  # type: ignore[no-untyped-def]
        opened.append(1)
        return real_open(fp, *a, **k)

    monkeypatch.setattr(PIL.Image, "open", counting_open)
    image, trimap = _image(seed=3), _trimap()
    r = request(server.url + "/api/matte?steps=1", files={"image": png(image), "trimap": png(trimap)})
    assert r.status == 200
    assert len(opened) == 2  # the image once, the trimap once
    opened.clear()
    alpha = png(_u8(np.full((H, W), 0.5)))
    r = request(server.url + "/api/cutout", files={"image": png(image), "alpha": alpha})
    assert r.status == 200 and len(opened) == 2
    session = MattingSession(lambda: pytest.fail("the model is loaded only when a matte is asked for"))
    loaded_image, loaded_trimap = session.load(png(image), png(trimap))
    assert loaded_image.shape == (H, W, 3) and set(np.unique(loaded_trimap)) == {0.0, 0.5, 1.0}


def test_large_uploads_wait_on_disk_and_are_decoded_from_there(
    server: BackgroundServer, tiny_vit: DiffMatte, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    import diffmatte.server.app as app_module

    made: list[tempfile.SpooledTemporaryFile] = []

    class Recorded(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(app_module, "_SPOOL_BYTES", 2000)
    monkeypatch.setattr(app_module.tempfile, "SpooledTemporaryFile", Recorded)
    image, trimap = _image(seed=11), _trimap()
    image_png, trimap_png = png(image), png(trimap)
    assert len(image_png) > 2000 > len(trimap_png)
    r = request(server.url + "/api/matte?steps=2&seed=4", files={"image": image_png, "trimap": trimap_png})
    assert r.status == 200
    np.testing.assert_array_equal(r.image(), _expected(tiny_vit, image, trimap, 2, 4))
    assert [f._rolled for f in made] == [True, False]  # the image went to disk, the small trimap did not
    r = request(server.url + "/api/matte", files={"image": b"", "trimap": trimap_png})
    assert r.status == 400 and "image: the upload is empty" in r.error()


def test_a_short_fuzz_run_gets_no_500_and_every_answer_it_expects(tiny_vit: DiffMatte) -> None:
    """benchmarks/fuzz_api.py's generator, 300 requests from 4 threads (the benchmark sends 10,000)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fuzz_api", REPO / "benchmarks" / "fuzz_api.py")
    assert spec is not None and spec.loader is not None
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_api"] = fuzz  # its dataclasses look their module up there
    spec.loader.exec_module(fuzz)
    config = ServerConfig(port=0, max_pixels=200_000, max_upload_bytes=2**20, queue_size=16, threads=1)
    with BackgroundServer(config, tiny_vit, "tiny") as s:
        result = fuzz.run_fuzz(s.url, 300, seed=7, workers=4, time_limit=120)
    assert result["requests"] == 300 and result["health_after"] == 200
    assert result["errors_500"] == [] and result["connection_failures"] == []
    assert result["unexpected"] == []
    kinds = result["status_by_kind"]
    assert len(kinds) >= 20 and kinds["valid matte"] == {"200": kinds["valid matte"].get("200", 0)}

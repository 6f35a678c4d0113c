"""The web app in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright):
open the example image, make an automatic trimap, paint a stroke, run, and check that the matte
the page shows and downloads is the API's for the same inputs; then paint a correction and check
the windowed re-matte the same way. `make test` installs chromium; without it the test is skipped,
unless DIFFMATTE_REQUIRE_BROWSER=1 (set by `make test`), where that is a failure."""
from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from .serve_helpers import png, request

CHROMIUM = Path("/usr/bin/chromium")
# No GPU, no sandbox (containers), and nothing that phones home: the test must work offline.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]
LEMUR = REPO / "examples" / "lemur.jpg"
LEMUR_W, LEMUR_H = 680, 440
STEPS, SEED = 3, 7

_missing = [m for m in ("playwright", "starlette", "uvicorn", "multipart", "onnxruntime", "rembg") if importlib.util.find_spec(m) is None]
if not CHROMIUM.exists():
    _missing.append(str(CHROMIUM))
if _missing:
    if os.environ.get("DIFFMATTE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"the browser test needs {', '.join(_missing)} (run `make test`, which installs them)")
    pytest.skip(f"the browser test needs {', '.join(_missing)} (`make test` installs them)", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from diffmatte import load_model  # noqa: E402
from diffmatte.server import BackgroundServer, ServerConfig  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    # The packaged default model: a 3-step matte of the 680x440 example takes about a second.
    with BackgroundServer(ServerConfig(port=0), load_model("default"), "default") as s:
        yield s


@pytest.fixture
def page(server: BackgroundServer) -> Iterator[Page]:
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
        pg = context.new_page()
        errors: list[str] = []
        outside: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("request", lambda r: None if r.url.startswith((server.url, "blob:", "data:")) else outside.append(r.url))
        yield pg
        browser.close()
        assert not errors, errors
        assert not outside, f"the page asked for something outside the server: {outside}"


def _grey(data: bytes) -> np.ndarray:
    """A grey PNG's values; the page's trimap comes from a canvas, so as opaque RGBA with R = G = B."""
    a = np.asarray(Image.open(io.BytesIO(data)))
    if a.ndim == 3:
        assert a.shape[2] == 4 and (a[..., 3] == 255).all() and (a[..., 0] == a[..., 1]).all(), a.shape
        assert (a[..., 0] == a[..., 2]).all()
        return a[..., 0]
    return a


def _download(page: Page, button: str) -> bytes:
    with page.expect_download() as info:
        page.click(button)
    return Path(info.value.path()).read_bytes()


def _shown_alpha(page: Page) -> np.ndarray:
    """The matte as drawn on the page's canvas (alpha view: R = G = B = alpha)."""
    page.select_option("#view", "alpha")
    b64 = page.evaluate(
        """() => {
            const c = document.getElementById('canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let s = '';
            for (let i = 0; i < d.length; i += 4) s += String.fromCharCode(d[i]);
            return [c.width, c.height, btoa(s)];
        }"""
    )
    w, h, data = b64
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w)


def _drag(page: Page, points: list[tuple[float, float]]) -> None:
    """A stroke through image pixels ``points`` (the canvas is scaled to fit the page)."""
    box = page.locator("#canvas").bounding_box()
    assert box is not None
    sx, sy = box["width"] / LEMUR_W, box["height"] / LEMUR_H

    def at(p: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + p[0] * sx, box["y"] + p[1] * sy

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(p), steps=5)
    page.mouse.up()


def test_page_matte_equals_the_api(page: Page, server: BackgroundServer, tmp_path: Path) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#model:has-text('default')")
    page.set_input_files("#file", str(LEMUR))
    page.wait_for_selector("body[data-state=image]")

    page.click("#auto")
    page.wait_for_selector("body[data-state=trimap]", timeout=60_000)
    auto = _grey(request(server.url + "/api/trimap", files={"image": LEMUR.read_bytes()}).body)

    # One foreground stroke, 24 px wide, across the unknown band at the lemur's left side.
    page.check("input[name=brush][value='255']")
    _drag(page, [(150, 300), (200, 300)])
    trimap = _grey(_download(page, "#save-trimap"))
    assert trimap.shape == (LEMUR_H, LEMUR_W) and set(np.unique(trimap)) <= {0, 128, 255}
    assert (trimap[296:305, 155:196] == 255).all()
    changed = np.argwhere(trimap != auto)
    assert len(changed) and changed[:, 0].min() >= 286 and changed[:, 0].max() <= 314  # only the stroke

    page.fill("#steps", str(STEPS))
    page.fill("#seed", str(SEED))
    page.click("#run")
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    assert page.get_attribute("#canvas", "data-frames") == str(STEPS)  # every step was shown

    shown = _shown_alpha(page)
    downloaded = _grey(_download(page, "#save-alpha"))
    api = request(
        server.url + "/api/matte", {"steps": STEPS, "seed": SEED}, {"image": LEMUR.read_bytes(), "trimap": png(trimap)}
    )
    assert api.status == 200
    expected = _grey(api.body)
    np.testing.assert_array_equal(downloaded, expected)
    np.testing.assert_array_equal(shown, expected)
    assert 0.1 < (expected > 128).mean() < 0.9  # a real matte, not an empty or full one

    # Paint to refine: a background stroke over the unknown band by the left ear, re-matted in a window.
    page.wait_for_selector("#save-cutout:not([disabled])", timeout=60_000)
    page.check("input[name=brush][value='0']")
    _drag(page, [(240, 100), (270, 100)])
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    page.wait_for_selector("#status:has-text('re-matted the window')")
    box = page.evaluate("() => window.diffmatte.box.join(',')")
    trimap2 = _grey(_download(page, "#save-trimap"))
    refined_api = request(
        server.url + "/api/refine",
        {"steps": STEPS, "seed": SEED, "box": box, "window": 128},
        {"image": LEMUR.read_bytes(), "trimap": png(trimap2), "alpha": png(expected)},
    )
    assert refined_api.status == 200
    np.testing.assert_array_equal(_shown_alpha(page), _grey(refined_api.body))
    np.testing.assert_array_equal(_grey(_download(page, "#save-alpha")), _grey(refined_api.body))
    left, top, right, bottom = map(int, refined_api.headers["x-diffmatte-window"].split(","))
    # the window is sized to the stroke (30 px plus 64 px of context a side), not a fixed 512 px
    assert right - left <= 192 and bottom - top <= 192, (left, top, right, bottom)
    outside = np.ones_like(expected, bool)
    outside[top:bottom, left:right] = False
    np.testing.assert_array_equal(_grey(refined_api.body)[outside], expected[outside])

    page.select_option("#view", "compare")
    cutout = np.asarray(Image.open(io.BytesIO(_download(page, "#save-cutout"))))
    assert cutout.shape == (LEMUR_H, LEMUR_W, 4)
    page.screenshot(path=str(tmp_path / "serve_page.png"))
    assert (tmp_path / "serve_page.png").stat().st_size > 10_000

    # Usable on a phone-width window: nothing wider than the screen, Run reachable.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert page.locator("#canvas").bounding_box()["width"] <= 390
    page.screenshot(path=str(tmp_path / "serve_page_phone.png"), full_page=True)


# -- the defects a first-time user met (issue 23), each a test that failed before its fix ---------
def _open_lemur(page: Page, server: BackgroundServer) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#model:has-text('default')")
    page.set_input_files("#file", str(LEMUR))
    page.wait_for_selector("body[data-state=image]")


def _matte_lemur_automatic(page: Page, server: BackgroundServer, steps: int) -> None:
    """Open the example, make the automatic trimap and run ``steps`` steps to the end."""
    _open_lemur(page, server)
    page.click("#auto")
    page.wait_for_selector("body[data-state=trimap]", timeout=60_000)
    page.fill("#steps", str(steps))
    page.click("#run")
    page.wait_for_selector("body[data-state=done]", timeout=60_000)


def _status(page: Page) -> str:
    return page.inner_text("#status")


def test_keyboard_reaches_open_and_every_control_has_a_name(page: Page, server: BackgroundServer) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("#model:has-text('default')")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "open"  # the first stop, reachable by Tab
    # Enter on it opens the file input (recorded here instead of waiting for the native chooser,
    # whose interception races the key press in headless Chromium)
    page.evaluate("""() => document.getElementById('file').addEventListener('click', (e) => {
        window.openedByKeyboard = true; e.preventDefault(); })""")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.openedByKeyboard === true", timeout=10_000)
    page.set_input_files("#file", str(LEMUR))
    page.wait_for_selector("body[data-state=image]")
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]):not([hidden]), select, progress, button')]
            .filter((e) => !e.closest('[hidden]') && !(e.getAttribute('aria-label') || e.closest('label') || e.textContent.trim()))
            .map((e) => e.id)"""
    )
    assert unnamed == []


def test_run_needs_known_pixels_and_bad_steps_are_refused(page: Page, server: BackgroundServer) -> None:
    _open_lemur(page, server)
    assert page.is_disabled("#run")  # an all-unknown trimap would give a flat grey matte
    page.check("input[name=brush][value='255']")
    _drag(page, [(340, 250), (360, 250)])
    assert page.is_enabled("#run")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    page.fill("#steps", "500")
    page.click("#run")
    assert "steps must be a whole number from 1 to 100" in _status(page)
    page.fill("#steps", "2.5")
    page.click("#run")
    assert 'got "2.5"' in _status(page)
    assert requests == [] and page.get_attribute("body", "data-state") == "image"  # nothing was sent
    page.fill("#steps", str(STEPS))
    page.click("#run")
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    assert page.evaluate("() => document.activeElement.id") == "run"  # focus is back where it was


def test_trimap_opens_from_a_file_and_downloads_as_one_grey_channel(page: Page, server: BackgroundServer,
                                                                   tmp_path: Path) -> None:
    _open_lemur(page, server)
    page.set_input_files("#trimap-file", str(REPO / "examples" / "lemur_trimap.png"))
    page.wait_for_selector("body[data-state=trimap]")
    data = _download(page, "#save-trimap")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L" and im.size == (LEMUR_W, LEMUR_H)
        got = np.asarray(im)
    given = np.asarray(Image.open(REPO / "examples" / "lemur_trimap.png").convert("L"))
    np.testing.assert_array_equal(got, np.select([given == 0, given == 255], [0, 255], 128))
    Image.fromarray(given[:100, :100]).save(tmp_path / "small.png")
    page.set_input_files("#trimap-file", str(tmp_path / "small.png"))
    page.wait_for_selector("#status.error")
    assert "the trimap is 100x100 but the image is 680x440" in _status(page)


def test_undo_takes_back_a_correction_and_its_matte(page: Page, server: BackgroundServer) -> None:
    _matte_lemur_automatic(page, server, STEPS)
    page.wait_for_selector("#save-cutout:not([disabled])", timeout=60_000)
    before = _shown_alpha(page)
    trimap_before = _grey(_download(page, "#save-trimap"))
    page.check("input[name=brush][value='0']")
    _drag(page, [(300, 120), (380, 120)])  # a background stroke across the head: a hole in the matte
    page.wait_for_selector("#status:has-text('re-matted the window')", timeout=60_000)
    assert (_shown_alpha(page) != before).any()
    page.click("#undo")
    np.testing.assert_array_equal(_shown_alpha(page), before)
    np.testing.assert_array_equal(_grey(_download(page, "#save-alpha")), before)
    np.testing.assert_array_equal(_grey(_download(page, "#save-trimap")), trimap_before)
    cutout = np.asarray(Image.open(io.BytesIO(_download(page, "#save-cutout"))))
    np.testing.assert_array_equal(cutout[..., 3], before)


def test_downloads_never_hand_out_another_images_results(page: Page, server: BackgroundServer, tmp_path: Path) -> None:
    _matte_lemur_automatic(page, server, 1)
    # Another picture opened while the lemur's cutout is still being estimated.
    other = tmp_path / "other.png"
    Image.fromarray(np.full((300, 400, 3), 90, np.uint8)).save(other)
    page.set_input_files("#file", str(other))
    page.wait_for_selector("#status:has-text('other: 400x300')")
    page.wait_for_timeout(3000)  # the lemur's cutout answer has come back by now
    assert page.is_disabled("#save-cutout") and page.is_disabled("#save-alpha")

    # A picture above the server's limit is refused with an offer to shrink it, and nothing of the
    # previous picture stays downloadable.
    page.evaluate("() => { window.diffmatte.maxPixels = 100000; }")
    page.set_input_files("#file", str(LEMUR))
    page.wait_for_selector("#status.error")
    assert "680×440 (0.3 MP) is above this server's limit of 0.1 MP: shrink it to 393×254?" in _status(page)
    assert page.is_disabled("#save-cutout") and page.is_disabled("#save-alpha") and page.is_disabled("#run")
    page.click("#shrink")
    page.wait_for_selector("body[data-state=image]")
    assert page.evaluate("() => [window.diffmatte.w, window.diffmatte.h]") == [393, 254]


def test_the_uncertainty_view_shows_the_apis_map_and_outlines_where_to_paint(page: Page, server: BackgroundServer) -> None:
    _open_lemur(page, server)
    page.set_input_files("#trimap-file", str(REPO / "examples" / "lemur_trimap.png"))
    page.wait_for_selector("body[data-state=trimap]")
    assert page.is_disabled("#view option[value=uncertainty]")
    page.check("#unsure")
    page.fill("#steps", "2")
    page.click("#run")
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    assert page.input_value("#view") == "uncertainty" and "a stroke in the outlined window helps most" in _status(page)
    shown = np.frombuffer(base64.b64decode(page.evaluate(
        """() => { let s = ''; for (const v of window.diffmatte.unsure) s += String.fromCharCode(v); return btoa(s); }"""
    )), np.uint8).reshape(LEMUR_H, LEMUR_W)
    trimap = np.asarray(Image.open(REPO / "examples" / "lemur_trimap.png").convert("L"))
    files = {"image": LEMUR.read_bytes(), "trimap": png(np.select([trimap == 0, trimap == 255], [0, 255], 128).astype(np.uint8))}
    api = request(server.url + "/api/matte", {"steps": 2, "seed": 0, "seeds": 4, "output": "uncertainty"}, files)
    np.testing.assert_array_equal(shown, _grey(api.body))
    boxes = page.evaluate("() => window.diffmatte.suggestions")
    assert 1 <= len(boxes) <= 3 and all(r > l and b > t for l, t, r, b in boxes)
    left, top, right, bottom = boxes[0]
    assert shown[top:bottom, left:right].sum() > 0  # the first window holds uncertainty
    page.check("input[name=brush][value='0']")
    _drag(page, [(60, 60), (80, 60)])  # a correction: the map no longer describes the matte on screen
    page.wait_for_selector("#status:has-text('re-matted the window')", timeout=60_000)
    assert page.evaluate("() => window.diffmatte.unsure") is None and page.input_value("#view") == "alpha"


def test_one_click_re_mattes_the_outlined_window_with_more_steps(page: Page, server: BackgroundServer) -> None:
    _open_lemur(page, server)
    page.set_input_files("#trimap-file", str(REPO / "examples" / "lemur_trimap.png"))
    page.wait_for_selector("body[data-state=trimap]")
    assert page.is_disabled("#rematte")  # no suggestion yet
    page.check("#unsure")
    page.fill("#steps", "2")
    page.click("#run")
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    page.wait_for_selector("#rematte:not([disabled])")
    left, top, right, bottom = page.evaluate("() => window.diffmatte.suggestions[0]")
    before = _shown_alpha(page)
    page.click("#rematte")
    page.wait_for_selector("#status:has-text('re-matted the window')", timeout=60_000)
    assert "with 4 steps" in _status(page)  # twice the steps field's 2
    win = [int(v) for v in re.search(r"window (\d+),(\d+),(\d+),(\d+)", _status(page)).groups()]
    assert win[0] <= left and win[1] <= top and win[2] >= right and win[3] >= bottom  # it holds the outline
    after = _shown_alpha(page)
    outside = np.ones_like(after, bool)
    outside[win[1]:win[3], win[0]:win[2]] = False
    assert (after != before).any() and (after[outside] == before[outside]).all()
    assert page.is_disabled("#rematte")  # the outline described the matte before: gone with it
    page.click("#undo")
    np.testing.assert_array_equal(_shown_alpha(page), before)


def test_the_status_line_sits_above_the_picture(page: Page, server: BackgroundServer) -> None:
    _open_lemur(page, server)
    status, picture = page.locator("#status").bounding_box(), page.locator("#canvas").bounding_box()
    assert status is not None and picture is not None
    # right above the picture (not at the end of the controls, below the fold on a laptop screen)
    assert 0 <= picture["y"] - (status["y"] + status["height"]) <= 12
    assert status["x"] <= picture["x"] + picture["width"] and picture["x"] <= status["x"] + status["width"]
    assert status["y"] + status["height"] < 768


def test_remove_colour_spill_gives_the_apis_despilled_cutout_and_back(page: Page, server: BackgroundServer) -> None:
    # The green light in the lemur's fur: the checkbox asks the server for the despilled cutout, the
    # view and the download follow it, and unticking brings the plain cutout back.
    _matte_lemur_automatic(page, server, 1)
    page.wait_for_selector("#save-cutout:not([disabled])", timeout=60_000)
    alpha = _download(page, "#save-alpha")
    plain = np.asarray(Image.open(io.BytesIO(_download(page, "#save-cutout"))))
    page.check("#despill")
    page.wait_for_function("() => window.diffmatte.cutoutDespill === true", timeout=60_000)
    despilled = np.asarray(Image.open(io.BytesIO(_download(page, "#save-cutout"))))
    api = request(server.url + "/api/cutout", {"despill": 1}, {"image": LEMUR.read_bytes(), "alpha": alpha})
    assert api.status == 200
    np.testing.assert_array_equal(despilled, api.image())
    np.testing.assert_array_equal(despilled[..., 3], plain[..., 3])
    semi = (plain[..., 3] > 12) & (plain[..., 3] < 243)

    def green(c: np.ndarray) -> float:
        rgb = c[..., :3][semi].astype(float)
        return float((rgb[:, 1] - (rgb[:, 0] + rgb[:, 2]) / 2).mean())

    assert green(despilled) < green(plain) - 1  # less of the grass's green where the fur is see-through
    page.uncheck("#despill")
    page.wait_for_function("() => window.diffmatte.cutoutDespill === false", timeout=60_000)
    page.wait_for_selector("#save-cutout:not([disabled])", timeout=60_000)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(_download(page, "#save-cutout")))), plain)


def test_the_shrink_offer_is_not_shown_before_it_is_needed(page: Page, server: BackgroundServer) -> None:
    # It sat under "Open…" as an empty button: the row's flex layout overrode the hidden attribute.
    _open_lemur(page, server)
    assert not page.is_visible("#shrink-row") and not page.is_visible("#shrink")

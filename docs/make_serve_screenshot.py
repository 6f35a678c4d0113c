"""docs/serve.png: the web app in headless Chromium with the packaged default model, after an
automatic trimap of the example, one foreground stroke, a 10-step run and a correction stroke.

    python docs/make_serve_screenshot.py            # needs diffmatte[serve], playwright, /usr/bin/chromium
"""
from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from diffmatte.loading import load_model
from diffmatte.server import BackgroundServer, ServerConfig

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main(out: Path = REPO / "docs" / "serve.png") -> None:
    with BackgroundServer(ServerConfig(port=0), load_model("default"), "default") as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(server.url + "/")
        page.wait_for_selector("#model:has-text('default')")
        page.set_input_files("#file", str(REPO / "examples" / "lemur.jpg"))
        page.wait_for_selector("body[data-state=image]")
        page.click("#auto")
        page.wait_for_selector("body[data-state=trimap]", timeout=60_000)
        box = page.locator("#canvas").bounding_box()
        assert box is not None

        def stroke(points: list[tuple[int, int]]) -> None:
            at = [(box["x"] + x * box["width"] / 680, box["y"] + y * box["height"] / 440) for x, y in points]
            page.mouse.move(*at[0])
            page.mouse.down()
            for q in at[1:]:
                page.mouse.move(*q, steps=5)
            page.mouse.up()

        page.check("input[name=brush][value='255']")
        stroke([(150, 300), (200, 300)])
        page.click("#run")
        page.wait_for_selector("body[data-state=done]", timeout=120_000)
        page.check("input[name=brush][value='0']")
        stroke([(240, 100), (270, 100)])
        page.wait_for_selector("#status:has-text('re-matted the window')", timeout=120_000)
        page.wait_for_selector("#save-cutout:not([disabled])", timeout=60_000)
        page.select_option("#view", "compare")
        page.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "serve.png")

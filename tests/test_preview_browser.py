"""The preview in a real browser: headless Chromium shows the stack, and scrolling changes it.

Driven over the Chrome DevTools protocol (``cdp.py``). The screenshot it takes is README's
``docs/preview.png``. Skipped only where chromium is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cdp import chromium_page, chromium_path
from PIL import Image

from casesync.preview.build import build_preview

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SCREENSHOT = REPO / "docs" / "preview.png"

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (apt-get install chromium)"
)

STACK = "document.querySelector('.stack')"


async def test_scrolling_the_stack_in_chromium_changes_the_slice(tmp_path: Path) -> None:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    result = build_preview(root, ["vertebral-haemangioma"])
    case_page = result.index.parent / "vertebral-haemangioma" / "index.html"
    async with chromium_page(tmp_path / "profile", 1200, 1100) as page:
        await page.send("Network.enable")
        await page.send("Page.enable")
        await page.send("Page.navigate", url=case_page.as_uri())
        await page.wait_for("Page.loadEventFired")
        urls = json.loads(await page.evaluate(f"{STACK}.querySelector('script.slices').text"))
        src = f"{STACK}.querySelector('img.slice').getAttribute('src')"
        await page.until(f"{STACK}.querySelector('img.slice').naturalWidth > 0")
        assert await page.evaluate(f"{STACK}.dataset.index") == "10"  # root image first

        shot = await page.send("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        box = await page.evaluate(
            f"(() => {{ const r = {STACK}.querySelector('.viewer').getBoundingClientRect();"
            " return [r.x, r.y, r.width, r.height]; })()"
        )
        x, y, width, height = box
        viewer = np.asarray(Image.open(io.BytesIO(png)).convert("L"))[
            int(y) : int(y + height), int(x) : int(x + width)
        ]
        assert viewer.size > 0 and viewer.std() > 20  # a slice is drawn, not an empty box
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(png)

        center = {"x": x + width / 2, "y": y + height / 2}
        await page.send(
            "Input.dispatchMouseEvent", type="mouseWheel", deltaX=0, deltaY=120, **center
        )
        await page.until(f"{STACK}.dataset.index === '11'")
        assert await page.evaluate(src) == urls["file"][11]

        await page.evaluate(f"{STACK}.focus()")
        for kind in ("keyDown", "keyUp"):
            await page.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key="ArrowDown",
                code="ArrowDown",
                windowsVirtualKeyCode=40,
            )
        await page.until(f"{STACK}.dataset.index === '12'")
        assert await page.evaluate(f"{STACK}.querySelector('.pos').textContent") == "slice 13 / 20"

        button = await page.evaluate(
            f"(() => {{ const r = {STACK}.querySelector('button[data-preset=lung]')"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await page.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=button[0],
                y=button[1],
                button="left",
                clickCount=1,
            )
        await page.until(f"{STACK}.dataset.preset === 'lung'")
        assert await page.evaluate(src) == urls["lung"][12]
        await page.until(f"{STACK}.querySelector('img.slice').complete")

        requested = [
            event["params"]["request"]["url"]
            for event in page.events
            if event.get("method") == "Network.requestWillBeSent"
        ]
        assert requested and all(url.startswith(("file://", "data:")) for url in requested)

"""End to end in real headless Chromium: open the page, upload an image through the file input, drag
a slider with the mouse, and check that the edited image changed; then transfer from a reference
image and change the transfer's strength. Chromium comes from Debian's
package, which `make test` installs; elsewhere the test is skipped unless
STYLE_TRANSFORMER_REQUIRE_BROWSER=1 (then a missing browser fails)."""

import base64
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from cdp import Browser, chromium_binary  # noqa: E402

pytestmark = [pytest.mark.skipif(chromium_binary() is None and not os.environ.get("STYLE_TRANSFORMER_REQUIRE_BROWSER"),
                                 reason="no Chromium (make test installs Debian's chromium package)"),
              pytest.mark.slow]  # a real browser: `make test` runs it, `make test-fast` does not


@pytest.fixture(scope="module")
def server(tiny_editing, tiny_checkpoint):
    from style_transformer import load_pipeline
    from style_transformer.web import EditorApp, make_server

    root = tiny_editing
    app = EditorApp(load_pipeline(checkpoint=tiny_checkpoint, editing=root / "editing", device="cpu"))
    srv = make_server(app, port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/", root
    srv.shutdown()
    srv.server_close()


def test_upload_drag_slider_changes_the_output(server, tmp_path):
    url, root = server
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(photo)
    browser = Browser(str(tmp_path / "profile"))
    try:
        browser.send("Page.enable")
        browser.send("Page.navigate", url=url)
        browser.wait_for("document.querySelectorAll('#sliders input[type=range]').length === 2")
        doc = browser.send("DOM.getDocument")
        node = browser.send("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#upload")
        browser.send("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(photo)])
        browser.wait_for("document.getElementById('recon').src.startsWith('data:image/png')")
        before = browser.wait_for("document.getElementById('edited').src.startsWith('data:') && "
                                  "document.getElementById('edited').src")
        box = browser.eval("(() => { const r = document.getElementById('slider-Smiling').getBoundingClientRect();"
                           " return [r.left, r.top, r.width, r.height]; })()")
        x0, y = box[0] + box[2] / 2, box[1] + box[3] / 2
        browser.send("Input.dispatchMouseEvent", type="mousePressed", x=x0, y=y, button="left", clickCount=1)
        for k in range(1, 11):  # drag to the right end: the attribute at full strength
            browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=x0 + k * box[2] / 20, y=y, button="left")
        browser.send("Input.dispatchMouseEvent", type="mouseReleased", x=box[0] + box[2] - 1, y=y, button="left",
                     clickCount=1)
        assert float(browser.eval("document.getElementById('slider-Smiling').value")) > 0
        after = browser.wait_for(f"(() => {{ const s = document.getElementById('edited').src; "
                                 f"return s !== {before!r} && s; }})()")
        assert after != before and browser.eval("document.getElementById('msg').textContent") == ""
        # reference editing: upload a reference, transfer, then change the transfer's strength
        other = tmp_path / "other.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(other)
        node = browser.send("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#ref-upload")
        browser.send("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(other)])
        browser.wait_for("document.getElementById('ref-status').textContent === 'reference ready'")
        browser.eval("document.getElementById('ref-apply').click()")
        transferred = browser.wait_for(f"(() => {{ const s = document.getElementById('edited').src; "
                                       f"return s !== {after!r} && s; }})()")
        browser.eval("(() => { const e = document.getElementById('ref-strength'); e.value = '3';"
                     " e.dispatchEvent(new Event('input')); })()")
        browser.wait_for(f"(() => {{ const s = document.getElementById('edited').src; "
                         f"return s !== {transferred!r} && s; }})()")
        assert browser.eval("document.getElementById('msg').textContent") == ""
        shot = browser.send("Page.captureScreenshot", format="png")
        (tmp_path / "page.png").write_bytes(base64.b64decode(shot["data"]))
        assert Image.open(tmp_path / "page.png").size[0] > 100
    finally:
        browser.close()

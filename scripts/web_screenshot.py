"""Screenshot of the browser editor for the README (headless Chromium, the shipped models).

    python scripts/web_screenshot.py --out docs/web.png

Starts the editor on a free local port, uploads a held-out face through the page's file input, drags
the first attribute slider, and saves the page as PNG.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))

from cdp import Browser  # noqa: E402
from PIL import Image  # noqa: E402

from style_transformer import load_pipeline  # noqa: E402
from style_transformer.demo import held_out_faces  # noqa: E402
from style_transformer.web import EditorApp, make_server  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/web.png")
    p.add_argument("--strength", type=float, default=0.8, help="slider position, as a fraction of its range")
    args = p.parse_args()
    srv = make_server(EditorApp(load_pipeline(device="cpu")), port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        face = Path(tmp) / "face.png"
        Image.fromarray(held_out_faces(4)[0][3]).resize((256, 256), Image.BICUBIC).save(face)
        b = Browser(str(Path(tmp) / "profile"))
        try:
            b.send("Page.enable")
            b.send("Page.navigate", url=f"http://127.0.0.1:{srv.server_address[1]}/")
            b.wait_for("document.querySelectorAll('#sliders input[type=range]').length > 0")
            node = b.send("DOM.querySelector", nodeId=b.send("DOM.getDocument")["root"]["nodeId"], selector="#upload")
            b.send("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(face)])
            b.wait_for("document.getElementById('recon').src.startsWith('data:image/png')")
            b.eval(f"(() => {{ const s = document.querySelector('#sliders input[type=range]');"
                   f" s.value = s.max * {args.strength}; s.dispatchEvent(new Event('input')); }})()")
            time.sleep(2.0)
            shot = b.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        finally:
            b.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    srv.shutdown()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

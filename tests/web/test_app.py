"""The editor's HTTP API on a tiny model: invert, slider and reference edits, downloads, the upload
limit and non-images as messages, concurrent requests queued, 127.0.0.1 by default."""

import io
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from style_transformer import load_pipeline
from style_transformer.web import EditorApp, make_server


@pytest.fixture(scope="module")
def server(tiny_editing, tiny_checkpoint):
    root = tiny_editing
    pipe = load_pipeline(checkpoint=tiny_checkpoint, editing=root / "editing", device="cpu")
    app = EditorApp(pipe, max_upload_mb=0.05)
    srv = make_server(app, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", srv
    srv.shutdown()
    srv.server_close()


def _post(url, body, ctype="application/octet-stream"):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _png_bytes(seed=0, size=40):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_page_info_and_samples(server):
    url, srv = server
    assert srv.server_address[0] == "127.0.0.1"
    page = urllib.request.urlopen(url + "/").read().decode()
    assert "<script>" in page and "http://" not in page.replace("http://127", "")  # no external assets
    info = json.loads(urllib.request.urlopen(url + "/api/info").read())
    assert [s["name"] for s in info["sliders"]] == ["Bangs", "Smiling"] and info["editors"] == ["Bangs", "Smiling"]
    sample = urllib.request.urlopen(url + "/api/sample/0.png").read()
    assert Image.open(io.BytesIO(sample)).size == (32, 32)


def test_invert_edit_and_download(server):
    url, _ = server
    status, out = _post(url + "/api/invert", _png_bytes(1))
    assert status == 200 and out["input"].startswith("data:image/png;base64,") and out["psnr"] > 0
    _, ref = _post(url + "/api/invert", _png_bytes(2))
    _, plain = _post(url + "/api/edit", json.dumps({"id": out["id"], "sliders": {}}).encode(), "application/json")
    status, moved = _post(url + "/api/edit", json.dumps({"id": out["id"], "sliders": {"Smiling": 5.0}}).encode(),
                          "application/json")
    assert status == 200 and moved["image"] != plain["image"]  # the slider changed the picture
    status, refd = _post(url + "/api/edit", json.dumps({"id": out["id"], "sliders": {}, "reference": ref["id"],
                                                       "reference_attribute": "Bangs"}).encode(), "application/json")
    assert status == 200
    png = urllib.request.urlopen(url + f"/api/download/{out['id']}.png").read()
    assert Image.open(io.BytesIO(png)).size == (32, 32)
    npz = np.load(io.BytesIO(urllib.request.urlopen(url + f"/api/download/{out['id']}.npz").read()))
    assert npz["ws"].shape == (8, 32) and not np.allclose(npz["ws"], npz["source_ws"])  # the reference edit


def test_reference_strength_scales_the_editors_move(server):
    url, _ = server
    _, out = _post(url + "/api/invert", _png_bytes(4))
    _, ref = _post(url + "/api/invert", _png_bytes(5))

    def edited_ws(**extra):
        body = {"id": out["id"], "sliders": {}, "reference": ref["id"], "reference_attribute": "Bangs", **extra}
        status, reply = _post(url + "/api/edit", json.dumps(body).encode(), "application/json")
        assert status == 200, reply
        return np.load(io.BytesIO(urllib.request.urlopen(url + f"/api/download/{out['id']}.npz").read()))

    own = edited_ws()  # the folder has no calibrated scale: the editor's own output
    doubled = edited_ws(reference_strength=2.0)
    np.testing.assert_allclose(doubled["ws"], own["source_ws"] + 2 * (own["ws"] - own["source_ws"]), atol=1e-5)
    for bad in (0, -1, "x"):
        status, reply = _post(url + "/api/edit", json.dumps(
            {"id": out["id"], "reference": ref["id"], "reference_attribute": "Bangs",
             "reference_strength": bad}).encode(), "application/json")
        assert status == 400 and "reference strength must be a number > 0" in reply["error"]


def test_bad_uploads_are_messages(server):
    url, _ = server
    status, out = _post(url + "/api/invert", b"this is not an image")
    assert status == 400 and "not an image" in out["error"]
    status, out = _post(url + "/api/invert", _png_bytes(3, size=200))  # > 0.05 MB limit
    assert status == 413 and "limit" in out["error"]
    status, out = _post(url + "/api/edit", json.dumps({"id": "nope"}).encode(), "application/json")
    assert status == 404 and "upload it again" in out["error"]
    status, out = _post(url + "/api/edit", b"{not json", "application/json")
    assert status == 400


def test_concurrent_users_are_queued(server):
    url, _ = server
    results = []

    def worker(i):
        results.append(_post(url + "/api/invert", _png_bytes(10 + i))[0])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 6


def test_without_editing_models_the_app_still_inverts(tiny_checkpoint):
    app = EditorApp(load_pipeline(checkpoint=tiny_checkpoint, device="cpu"))
    assert app.info()["sliders"] == [] and app.info()["editors"] == []
    out = app.invert(_png_bytes(4))
    assert out["reconstruction"].startswith("data:image/png")
    edited = app.edit({"id": out["id"], "sliders": {}})
    assert edited["image"] == out["reconstruction"]  # no edit: the reconstruction itself


def test_serve_cli_refuses_a_busy_port(tiny_checkpoint, capsys):
    import socket

    from style_transformer.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--checkpoint", str(tiny_checkpoint), "--port", str(port), "--device", "cpu"]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_edits_without_editing_models_are_a_400_not_a_500(tiny_checkpoint):
    from style_transformer.web.app import WebError

    app = EditorApp(load_pipeline(checkpoint=tiny_checkpoint, device="cpu"))
    sid = app.invert(_png_bytes())["id"]
    with pytest.raises(WebError) as e:
        app.edit({"id": sid, "sliders": {"Smiling": 1.0}})
    assert e.value.status == 400 and "no editing models" in e.value.message


def test_upload_limit_on_both_sides_of_its_edge(server):
    """An upload of exactly the limit is read (a PNG padded with trailing bytes, which PNG readers
    ignore); one byte more is refused with 413 before the body is read."""
    url, _ = server
    limit = int(0.05 * 2 ** 20)  # the fixture's max_upload_mb=0.05, in bytes
    png = _png_bytes(4, size=16)
    at_limit = png + b"\0" * (limit - len(png))
    assert len(at_limit) == limit
    status, out = _post(url + "/api/invert", at_limit)
    assert status == 200 and "id" in out, out
    status, out = _post(url + "/api/invert", at_limit + b"\0")
    assert status == 413 and "limit" in out["error"]

"""The editor's HTTP API on a tiny model: invert, slider and reference edits, downloads, the upload
limit and non-images as messages, concurrent requests queued, 127.0.0.1 by default."""

import contextlib
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
def editing_pipe(tiny_editing, tiny_checkpoint):
    return load_pipeline(checkpoint=tiny_checkpoint, editing=tiny_editing / "editing", device="cpu")


@contextlib.contextmanager
def _serving(app, **kw):
    """``app`` served on a free port in a thread: (its URL, the server); shut down on leaving."""
    srv = make_server(app, port=0, **kw)
    srv.editor_app = app  # for tests that reach behind the routes
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture  # one server per test: each test drives the handler and the app it builds from the start
def server(editing_pipe):
    with _serving(EditorApp(editing_pipe, max_upload_mb=0.05)) as served:
        yield served


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
    status, reply = _post(url + "/api/edit", json.dumps({"id": out["id"], "reference": ref["id"], "reference_attribute":
                                                          "Bangs", "reference_strength": 1e-9}).encode(), "application/json")
    assert status == 200, reply  # just above 0 is a valid scale
    for bad in (0, -1e-9, -1, "x", "nan", "inf"):
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
    assert (e.value.status, e.value.message) == (400, "this server has no editing models loaded: inversion only")


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


def _raw(url, method, path, body=b"", headers=None):
    """One request with exactly these headers: (status, headers, decoded body)."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    if body:
        conn.send(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def test_routes_headers_and_refusals_over_http(server):
    url, srv = server
    status, h, body = _raw(url, "GET", "/?from=bookmark")  # the query is not part of the route
    assert status == 200 and h["Content-Type"] == "text/html; charset=utf-8" and h["Cache-Control"] == "no-store"
    assert int(h["Content-Length"]) == len(body) and b"<script>" in body
    status, h, body = _raw(url, "GET", "/api/info")
    assert status == 200 and h["Content-Type"] == "application/json" and json.loads(body)["samples"] == 6
    status, h, body = _raw(url, "GET", "/api/sample/2.png")
    assert status == 200 and h["Content-Type"] == "image/png"
    for path in ("/api/sample/6.png", "/api/sample/-1.png"):
        status, _, body = _raw(url, "GET", path)
        assert status == 404 and json.loads(body) == {"error": f"no sample {path.rsplit('/', 1)[1][:-4]}"}
    status, _, body = _raw(url, "GET", "/api/sample/x.png")
    assert status == 400 and json.loads(body) == {"error": "malformed request"}
    status, _, body = _raw(url, "GET", "/nope")
    assert status == 404 and json.loads(body) == {"error": "no such page: /nope"}
    status, _, body = _raw(url, "POST", "/api/info", b"", {"Content-Length": "0"})  # GET routes are GET only
    assert status == 404
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        status, _, body = _raw(url, method, "/api/invert")
        assert status == 405 and json.loads(body) == {
            "error": f"method {method} is not allowed here (GET and POST are)"}
    status, _, body = _raw(url, "POST", "/api/invert", b"", {"Content-Length": "many"})
    assert status == 400 and json.loads(body) == {"error": "malformed request: bad Content-Length"}
    status, _, body = _raw(url, "POST", "/api/invert", b"", {"Content-Length": "-1"})
    assert status == 400 and json.loads(body) == {"error": "malformed request: negative Content-Length"}
    status, _, body = _raw(url, "POST", "/api/invert", b"", {"Content-Length": "0"})
    assert status == 400 and json.loads(body) == {"error": "the upload is empty"}
    status, _, body = _raw(url, "POST", "/api/edit", b"", {"Content-Length": "0"})  # an empty edit: {}
    assert status == 404 and json.loads(body) == {"error": "this image is no longer in memory: upload it again"}


def test_a_body_shorter_than_its_length_and_a_bug_are_answered(server, monkeypatch):
    import socket
    from urllib.parse import urlparse

    url, srv = server
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as c:
        c.sendall(b"POST /api/invert HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        c.shutdown(socket.SHUT_WR)  # the client stops after 3 of the 10 bytes it announced
        reply = c.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {
        "error": "malformed request: the body is shorter than its Content-Length"}
    app = srv.editor_app

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(app, "info", broken)
    status, _, body = _raw(url, "GET", "/api/info")
    assert status == 500 and json.loads(body) == {"error": "internal error: RuntimeError"}
    status, _, _ = _raw(url, "GET", "/")  # and the server goes on serving
    assert status == 200


def test_downloads_name_their_files(server):
    url, _ = server
    _, out = _post(url + "/api/invert", _png_bytes(1))
    for ext, ctype in (("png", "image/png"), ("npz", "application/octet-stream")):
        status, h, body = _raw(url, "GET", f"/api/download/{out['id']}.{ext}")
        assert status == 200 and h["Content-Type"] == ctype
        assert h["Content-Disposition"] == f'attachment; filename="edited.{ext}"'
    status, _, body = _raw(url, "GET", "/api/download/unknown.png")
    assert status == 404 and "upload it again" in json.loads(body)["error"]


def test_a_silent_or_dribbling_client_is_cut_off_at_its_deadlines(editing_pipe):
    """A read waits at most ``timeout``; the whole request must arrive within REQUEST_DEADLINE x timeout
    even if each byte comes in time."""
    import socket
    import time

    from style_transformer.web.app import REQUEST_DEADLINE

    with _serving(EditorApp(editing_pipe), timeout=0.3) as (_, srv):
        port = srv.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:  # sends nothing
            t0 = time.perf_counter()
            assert c.recv(100) == b""  # the server closes the connection
            assert time.perf_counter() - t0 < 2.0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:  # one byte every 0.1 s
            t0 = time.perf_counter()
            closed = False
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                try:
                    c.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
                if time.perf_counter() - t0 > 3.0:
                    break
            if not closed:
                c.settimeout(2)
                try:
                    closed = c.recv(100) == b""
                except OSError:
                    closed = True
            elapsed = time.perf_counter() - t0
            assert closed and REQUEST_DEADLINE * 0.3 - 0.1 < elapsed < 3.0


def test_info_sliders_follow_the_calibrated_strengths(editing_pipe, monkeypatch):
    app = EditorApp(editing_pipe, max_upload_mb=0.05, n_samples=3)
    monkeypatch.setattr(app.editing, "strengths", lambda method: {"Smiling": 1.23456, "Eyeglasses": 9.0}
                        if method == "interfacegan" else {})
    info = app.info()
    # sorted by name; no calibrated strength: 3; the slider reaches twice the default, at least 1
    assert info["sliders"] == [{"name": "Bangs", "max": 6.0, "default": 3.0},
                               {"name": "Smiling", "max": 2.47, "default": 1.23}]
    assert info["editors"] == ["Bangs", "Smiling"] and info["samples"] == 3
    assert info["max_upload_mb"] == int(0.05 * 2 ** 20) / 2 ** 20 and info["size"] == editing_pipe.input_size
    monkeypatch.setattr(app.editing, "strengths", lambda method: {"Smiling": 0.3})
    assert app.info()["sliders"][1] == {"name": "Smiling", "max": 1.0, "default": 0.3}
    # the samples are the held-out faces, as PNG
    from style_transformer.demo import held_out_faces

    faces = held_out_faces(3, editing_pipe.input_size)[0]
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(app.sample_png(i)))), faces[i])


def _from_data_url(url):
    import base64

    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_invert_shows_what_the_encoder_reads_and_keeps_recent_sessions(editing_pipe):
    import torch

    from style_transformer.data.images import pool_to_size, preprocess, to_uint8
    from style_transformer.web.app import WebError

    app = EditorApp(editing_pipe, max_sessions=2)
    png = _png_bytes(7, size=48)
    out = app.invert(png)
    x = preprocess([Image.open(io.BytesIO(png))], editing_pipe.input_shape)
    np.testing.assert_array_equal(_from_data_url(out["input"]), to_uint8(x)[0])
    res = editing_pipe.invert(list(x))
    np.testing.assert_array_equal(_from_data_url(out["reconstruction"]), to_uint8(res.images)[0])
    recon = pool_to_size(res.images, editing_pipe.input_shape).clamp(-1, 1).double()
    mse = float((recon - x.double()).pow(2).mean())
    assert out["psnr"] == round(10 * np.log10(4 / mse), 2)
    # an EXIF-rotated JPEG is inverted upright; a gray image is taken as RGB
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    shown = _from_data_url(app.invert(buf.getvalue())["input"])
    assert shown[:4].mean() > 200 and shown[-4:].mean() < 60  # the white band is on top once rotated
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16), 90, np.uint8), "L").save(buf, "PNG")
    assert _from_data_url(app.invert(buf.getvalue())["input"]).shape[-1] == 3
    # two sessions kept, least recently used dropped: using the oldest keeps it
    a, b = app.invert(png)["id"], app.invert(png)["id"]
    app.edit({"id": a})
    c = app.invert(png)["id"]
    assert set(app.sessions) == {a, c}
    with pytest.raises(WebError) as e:
        app.edit({"id": b})
    assert e.value.status == 404
    # the limit and non-images, with their messages
    small = EditorApp(editing_pipe, max_upload_mb=0.001)
    with pytest.raises(WebError) as e:
        small.invert(b"\0" * (small.max_upload + 1))
    assert (e.value.status, e.value.message) == (413, "the file is 0.0 MB; the limit is 0 MB")
    assert small.invert(_png_bytes(1, size=8))["id"]  # at most the limit: read
    with pytest.raises(WebError) as e:
        app.invert(b"GIF89a not really")
    assert (e.value.status, e.value.message) == (400, "that file is not an image this app can read (PNG, JPEG, WebP, BMP)")
    assert torch.is_tensor(app.sessions[c]["ws"])


def test_edits_sum_sliders_then_apply_the_reference(editing_pipe):
    import torch

    from style_transformer.data.images import to_uint8
    from style_transformer.web.app import WebError

    app = EditorApp(editing_pipe)
    sid, ref = app.invert(_png_bytes(1))["id"], app.invert(_png_bytes(2))["id"]
    ws, ws_ref = app.sessions[sid]["ws"], app.sessions[ref]["ws"]
    out = app.edit({"id": sid, "sliders": {"Smiling": "2", "Bangs": -1.5, "Eyeglasses": 0},
                    "reference": ref, "reference_attribute": "Bangs", "reference_strength": "0.5"})
    want = editing_pipe.edit_ws(ws, "Smiling", strength=2.0, method="interfacegan")
    want = editing_pipe.edit_ws(want, "Bangs", strength=-1.5, method="interfacegan")
    want = editing_pipe.edit_ws(want, "Bangs", ws_ref=ws_ref, method="reference", strength=0.5)
    torch.testing.assert_close(app.sessions[sid]["edited_ws"], want)
    shown = _from_data_url(out["image"])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(app.download(sid, "png")[0]))), shown)
    np.testing.assert_array_equal(shown, to_uint8(editing_pipe.generate(want))[0])
    npz = np.load(io.BytesIO(app.download(sid, "npz")[0]))
    assert npz["ws"].dtype == np.float32 and npz["source_ws"].dtype == np.float32
    np.testing.assert_array_equal(npz["ws"], want[0].numpy())
    np.testing.assert_array_equal(npz["source_ws"], ws[0].numpy())
    # a reference without an attribute (or an attribute without a reference) is no reference edit
    app.edit({"id": sid, "reference": ref})
    torch.testing.assert_close(app.sessions[sid]["edited_ws"], ws)
    app.edit({"id": sid, "reference_attribute": "Bangs"})
    torch.testing.assert_close(app.sessions[sid]["edited_ws"], ws)
    # refusals, each a 400 with its message
    for body, message in (({"id": sid, "sliders": {"Smiling": "nan"}}, "slider Smiling: not a number"),
                          ({"id": sid, "sliders": {"Smiling": float("inf")}}, "slider Smiling: not a number")):
        with pytest.raises(WebError) as e:
            app.edit(body)
        assert (e.value.status, e.value.message) == (400, message)
    with pytest.raises(WebError) as e:
        app.edit({"id": sid, "sliders": {"Nope": 1.0}})
    assert e.value.status == 400 and "Nope" in e.value.message
    with pytest.raises(WebError) as e:
        app.edit({"id": sid, "reference": ref, "reference_attribute": "Bangs", "reference_strength": "x"})
    assert e.value.message == "reference strength must be a number > 0, got 'x'"
    with pytest.raises(WebError) as e:
        app.edit({"id": sid, "reference": "gone", "reference_attribute": "Bangs"})
    assert e.value.status == 404
    assert str(WebError(418, "teapot")) == "teapot"


def test_sliders_use_directions_and_references_the_editor_whatever_the_folder_default(editing_pipe, monkeypatch):
    from style_transformer.web.app import WebError

    app = EditorApp(editing_pipe)
    sid, ref = app.invert(_png_bytes(1))["id"], app.invert(_png_bytes(2))["id"]
    calls = []
    real = editing_pipe.edit_ws

    def spy(ws, attribute, **kw):
        calls.append((attribute, kw.get("method"), kw.get("strength")))
        return real(ws, attribute, **kw)

    monkeypatch.setattr(editing_pipe, "edit_ws", spy)
    app.edit({"id": sid, "sliders": {"Smiling": 1.5}, "reference": ref, "reference_attribute": "Bangs"})
    assert calls == [("Smiling", "interfacegan", 1.5), ("Bangs", "reference", None)]
    # the size limit's message in megabytes
    big = EditorApp(editing_pipe, max_upload_mb=2)
    with pytest.raises(WebError) as e:
        big.invert(b"\0" * (3 * 2 ** 20))
    assert (e.value.status, e.value.message) == (413, "the file is 3.0 MB; the limit is 2 MB")


def test_requests_are_logged_quietly_and_connection_errors_by_kind(server, caplog):
    import logging

    url, srv = server
    caplog.set_level(logging.DEBUG, logger="style_transformer.web.app")
    status, h, _ = _raw(url, "GET", "/api/info")
    assert status == 200 and h["Server"].startswith("style-transformer ")
    assert any('"GET /api/info HTTP/1.1" 200' in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    caplog.clear()
    for error, level, text in ((ConnectionResetError("reset by peer"), logging.DEBUG,
                                "connection from ('10.0.0.1', 5) ended: reset by peer"),
                               (KeyError("boom"), logging.ERROR, "connection from ('10.0.0.1', 5) failed")):
        try:
            raise error
        except Exception:
            srv.handle_error(None, ("10.0.0.1", 5))
        rec = caplog.records[-1]
        assert (rec.levelno, rec.getMessage()) == (level, text)
    assert caplog.records[-1].exc_info is not None  # the unexpected one with its traceback


def test_post_without_a_length_is_an_empty_body_and_the_limit_is_told_in_megabytes(server, editing_pipe):
    url, _ = server
    status, _, body = _raw(url, "POST", "/api/edit")  # no Content-Length at all
    assert status == 404 and "upload it again" in json.loads(body)["error"]
    with _serving(EditorApp(editing_pipe, max_upload_mb=2)) as (big, _):
        status, _, body = _raw(big, "POST", "/api/invert", b"", {"Content-Length": str(3 * 2 ** 20)})
        assert status == 413 and json.loads(body) == {"error": "the file is 3.0 MB; the limit is 2 MB"}


def test_route_details(server):
    url, srv = server
    assert _raw(url, "GET", "/api/info?x=1?y=2")[0] == 200  # everything after the first "?" is the query
    status, _, body = _raw(url, "GET", "/api/edit")  # POST routes are POST only
    assert status == 404 and json.loads(body) == {"error": "no such page: /api/edit"}
    status, _, body = _raw(url, "POST", "/api/edit", b"{not json", {"Content-Length": "9"})
    assert status == 400 and json.loads(body) == {"error": "malformed request"}
    _, out = _post(url + "/api/invert", _png_bytes(1))
    # the format is what follows the name's first dot: png, or else the codes
    status, h, body = _raw(url, "GET", f"/api/download/{out['id']}.x.png")
    assert status == 200 and h["Content-Type"] == "application/octet-stream"
    assert set(np.load(io.BytesIO(body))) == {"ws", "source_ws"}


def test_a_slow_answer_is_not_cut_off_by_the_request_deadline(editing_pipe, caplog):
    """The deadline bounds receiving a request; once a GET is in, answering may take longer."""
    import logging
    import time

    app = EditorApp(editing_pipe)
    real = app.info

    def slow_info():
        time.sleep(1.2)
        return real()

    app.info = slow_info
    with _serving(app, timeout=0.3) as (url, _):  # deadline 0.9 s
        status, _, body = _raw(url, "GET", "/api/info")
        assert status == 200 and json.loads(body)["samples"] == 6
        app.info = lambda: 1 / 0  # a bug: answered 500 and logged with the request
        caplog.set_level(logging.ERROR, logger="style_transformer.web.app")
        assert _raw(url, "GET", "/api/info?q")[0] == 500
        assert any(r.getMessage() == "request GET /api/info failed" for r in caplog.records)
    assert EditorApp(editing_pipe).max_upload == 10 * 2 ** 20  # the documented default, as `serve` has it

"""``style-transformer serve``: a small interactive editor in the browser, on the standard library only.

Upload an image (or pick a held-out sample face), see input and reconstruction side by side, move a
slider per attribute direction, transfer an attribute from a reference image, download the edited
image and its latents. Everything runs in this process on the pipeline (``inference.py``); nothing is
fetched from the network (the page has no external assets).

Safety and load: binds 127.0.0.1 unless told otherwise; uploads over ``max_upload_mb`` and files that
are not images are refused with a message shown in the page; requests are served by threads but the
model runs one request at a time (a lock: concurrent users are queued, never crashed); at most
``max_sessions`` inverted images are kept (least recently used dropped).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple
from uuid import uuid4

import numpy as np

from ..errors import StyleTransformerError
import torch

log = logging.getLogger(__name__)

CONNECTION_TIMEOUT_S = 10.0  # longest wait for one read from a client
REQUEST_DEADLINE = 3  # x CONNECTION_TIMEOUT_S: longest time to receive a whole request


class WebError(StyleTransformerError):
    """A request the app refuses: (HTTP status, message shown in the page)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _png(img: torch.Tensor) -> bytes:
    from PIL import Image

    from ..data.images import to_uint8

    buf = io.BytesIO()
    Image.fromarray(to_uint8(img[None])[0]).save(buf, format="PNG")
    return buf.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


class EditorApp:
    """The app's state and actions, independent of HTTP (the handler below only routes to these).

    Args:
        pipe: an ``InversionPipeline`` with an encoder (editing models optional).
        max_upload_mb: upload size limit.
        max_sessions: inverted images kept in memory.
        n_samples: held-out sample faces offered in the page.
    """

    def __init__(self, pipe, max_upload_mb: float = 10.0, max_sessions: int = 64, n_samples: int = 6):
        self.pipe = pipe
        self.max_upload = int(max_upload_mb * 2 ** 20)
        self.max_sessions = max_sessions
        self.lock = threading.Lock()  # one model call at a time: concurrent requests queue here
        self.sessions: "OrderedDict[str, Dict]" = OrderedDict()
        from ..demo import held_out_faces

        self.samples = list(held_out_faces(n_samples, pipe.input_size)[0])
        try:
            self.editing = pipe.editing
        except Exception:  # no editing models: inversion only
            self.editing = None

    # -- info ----------------------------------------------------------------------------------------
    def info(self) -> Dict:
        sliders, editors = [], []
        if self.editing is not None:
            strengths = self.editing.strengths("interfacegan")
            for name in sorted(self.editing.directions):
                s = float(strengths.get(name, 3.0))
                sliders.append({"name": name, "max": round(max(2 * s, 1.0), 2), "default": round(s, 2)})
            editors = sorted(self.editing.editors)
        return {"sliders": sliders, "editors": editors, "samples": len(self.samples),
                "max_upload_mb": self.max_upload / 2 ** 20, "size": self.pipe.input_size}

    def sample_png(self, i: int) -> bytes:
        from PIL import Image

        if not 0 <= i < len(self.samples):
            raise WebError(404, f"no sample {i}")
        buf = io.BytesIO()
        Image.fromarray(self.samples[i]).save(buf, format="PNG")
        return buf.getvalue()

    # -- actions -------------------------------------------------------------------------------------
    def _decode(self, data: bytes):
        from PIL import Image, ImageOps, UnidentifiedImageError

        if len(data) > self.max_upload:
            raise WebError(413, f"the file is {len(data) / 2 ** 20:.1f} MB; the limit is "
                                f"{self.max_upload / 2 ** 20:.0f} MB")
        if not data:
            raise WebError(400, "the upload is empty")
        try:
            im = Image.open(io.BytesIO(data))
            im.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            raise WebError(400, "that file is not an image this app can read (PNG, JPEG, WebP, BMP)") from None
        im = ImageOps.exif_transpose(im)
        return im.convert("RGB")

    def invert(self, data: bytes) -> Dict:
        """Image bytes -> a session id, input and reconstruction (data URLs) and the PSNR."""
        from ..data.images import pool_to_size, preprocess

        im = self._decode(data)
        x = preprocess([im], self.pipe.input_shape)  # once: the tensor is what the encoder reads, and the input shown
        with self.lock:
            res = self.pipe.invert(list(x))
        recon = pool_to_size(res.images, self.pipe.input_shape).clamp(-1, 1)
        psnr = float(10 * torch.log10(4 / (recon - x).pow(2).mean().clamp_min(1e-12)))
        sid = uuid4().hex
        self.sessions[sid] = {"ws": res.ws, "edited_ws": res.ws, "edited": res.images[0]}
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)
        return {"id": sid, "input": _data_url(_png(x[0])), "reconstruction": _data_url(_png(res.images[0])),
                "psnr": round(psnr, 2)}

    def _session(self, sid: str) -> Dict:
        if sid not in self.sessions:
            raise WebError(404, "this image is no longer in memory: upload it again")
        self.sessions.move_to_end(sid)
        return self.sessions[sid]

    def edit(self, request: Dict) -> Dict:
        """``{"id", "sliders": {name: strength}, "reference": id?, "reference_attribute": name?,
        "reference_strength": scale?}`` -> the edited image (data URL). Slider directions are summed; a
        reference edit is applied after (its scale: the editing folder's calibrated one unless given)."""
        from ..editing import DirectionError

        s = self._session(str(request.get("id", "")))
        ws = s["ws"]
        with self.lock:
            try:
                for name, strength in (request.get("sliders") or {}).items():
                    strength = float(strength)
                    if not np.isfinite(strength):
                        raise WebError(400, f"slider {name}: not a number")
                    if strength != 0.0:
                        self._needs_editing()
                        ws = self.pipe.edit_ws(ws, name, strength=strength, method="interfacegan")
                ref_id, ref_attr = request.get("reference"), request.get("reference_attribute")
                if ref_id and ref_attr:
                    self._needs_editing()
                    scale = request.get("reference_strength")
                    if scale is not None:
                        try:
                            scale = float(scale)
                        except (TypeError, ValueError):
                            scale = float("nan")
                        if not (np.isfinite(scale) and scale > 0):
                            raise WebError(400, f"reference strength must be a number > 0, got "
                                                f"{request.get('reference_strength')!r}")
                    ws = self.pipe.edit_ws(ws, ref_attr, ws_ref=self._session(str(ref_id))["ws"], method="reference",
                                           strength=scale)
            except (DirectionError, ValueError) as e:
                raise WebError(400, str(e)) from None
            img = self.pipe.generate(ws)[0]
        s["edited_ws"], s["edited"] = ws, img
        return {"image": _data_url(_png(img))}

    def _needs_editing(self) -> None:
        if self.editing is None:
            raise WebError(400, "this server has no editing models loaded: inversion only")

    def download(self, sid: str, what: str) -> Tuple[bytes, str]:
        s = self._session(sid)
        if what == "png":
            return _png(s["edited"]), "image/png"
        buf = io.BytesIO()
        np.savez(buf, ws=s["edited_ws"][0].numpy().astype(np.float32), source_ws=s["ws"][0].numpy().astype(np.float32))
        return buf.getvalue(), "application/octet-stream"


def make_handler(app: EditorApp, timeout: float = CONNECTION_TIMEOUT_S):
    from .page import PAGE

    class Handler(BaseHTTPRequestHandler):
        server_version = "style-transformer"
        # a client that sends its request slower than this (slowloris) is dropped; its thread ends
        timeout = None  # set below from make_handler's argument

        def setup(self):
            super().setup()
            # the whole request (line, headers, body) must arrive within REQUEST_DEADLINE x timeout: a
            # client that dribbles bytes (each within the read timeout) is cut off all the same
            self._deadline = threading.Timer(REQUEST_DEADLINE * self.timeout, self._expire)
            self._deadline.daemon = True
            self._deadline.start()

        def _expire(self):
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _received(self):
            self._deadline.cancel()  # the request is in: answering it may take as long as it takes

        def finish(self):
            self._deadline.cancel()
            super().finish()

        def log_message(self, fmt, *args):  # quiet by default; errors are logged below
            log.debug(fmt, *args)

        def _send(self, status: int, body: bytes, ctype: str, extra: Optional[Dict[str, str]] = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: Dict) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def _body(self) -> bytes:
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise WebError(400, "malformed request: bad Content-Length") from None
            if n < 0:
                raise WebError(400, "malformed request: negative Content-Length")
            if n > app.max_upload:  # refused before the body is read
                self._received()
                raise WebError(413, f"the file is {n / 2 ** 20:.1f} MB; the limit is {app.max_upload / 2 ** 20:.0f} MB")
            body = self.rfile.read(n) if n else b""
            self._received()
            if len(body) < n:
                raise WebError(400, "malformed request: the body is shorter than its Content-Length")
            return body

        def _route(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            if method == "GET":
                self._received()
            try:
                if method == "GET" and path == "/":
                    return self._send(200, PAGE.encode(), "text/html; charset=utf-8")
                if method == "GET" and path == "/api/info":
                    return self._json(200, app.info())
                if method == "GET" and path.startswith("/api/sample/"):
                    return self._send(200, app.sample_png(int(path.rsplit("/", 1)[1].split(".")[0])), "image/png")
                if method == "POST" and path == "/api/invert":
                    return self._json(200, app.invert(self._body()))
                if method == "POST" and path == "/api/edit":
                    try:
                        req = json.loads(self._body() or b"{}")
                    except json.JSONDecodeError:
                        raise WebError(400, "malformed request") from None
                    return self._json(200, app.edit(req))
                if method == "GET" and path.startswith("/api/download/"):
                    sid, _, ext = path.rsplit("/", 1)[1].partition(".")
                    body, ctype = app.download(sid, "png" if ext == "png" else "npz")
                    return self._send(200, body, ctype, {"Content-Disposition": f'attachment; filename="edited.{ext}"'})
                raise WebError(404, f"no such page: {path}")
            except WebError as e:
                return self._json(e.status, {"error": e.message})
            except ValueError:
                return self._json(400, {"error": "malformed request"})
            except Exception as e:  # a bug must not take the server down: report it, keep serving
                log.exception("request %s %s failed", method, path)
                return self._json(500, {"error": f"internal error: {type(e).__name__}"})

        def do_GET(self):  # noqa: N802 (http.server's naming)
            self._route("GET")

        def do_POST(self):  # noqa: N802
            self._route("POST")

        def _not_allowed(self):
            self._json(405, {"error": f"method {self.command} is not allowed here (GET and POST are)"})

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    Handler.timeout = timeout
    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: socketserver's 5 resets connections of a burst of clients

    def handle_error(self, request, client_address):
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError, socket.timeout)):  # the client went away or stalled
            log.debug("connection from %s ended: %s", client_address, err)
            return
        log.exception("connection from %s failed", client_address)


def make_server(app: EditorApp, host: str = "127.0.0.1", port: int = 7860,
                timeout: float = CONNECTION_TIMEOUT_S) -> ThreadingHTTPServer:
    """The HTTP server (not started): ``server.serve_forever()``; ``port=0`` picks a free port. Each
    connection runs in its own thread and is dropped when a read waits longer than ``timeout`` s."""
    server = _Server((host, port), make_handler(app, timeout))
    return server

"""Load and abuse test of the web editor (``serve``) on 127.0.0.1; bounded, stops by itself.

Concurrent clients send a seeded mix of valid requests (page, info, samples, uploads, slider edits,
reference edits, downloads) and invalid ones (oversized and non-image uploads, malformed multipart
and JSON bodies, a bad Content-Length, wrong methods, unknown paths); meanwhile a slowloris client
sends its request one byte at a time. Reports 5xx answers and dropped connections, latency of the
valid requests (median, p95), requests/s and the process RSS before and after each round.

    python scripts/loadtest.py                          # make loadtest: the shipped models
    python scripts/loadtest.py --clients 16 --requests 400 --rounds 2
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def rss_mb() -> float:
    from style_transformer.utils import process_rss_mb

    return process_rss_mb()


def _png(seed: int, size: int = 48) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class LoadReport:
    requests: int = 0
    valid: int = 0
    server_errors: int = 0  # 5xx answers
    dropped: int = 0  # valid requests whose connection failed
    unexpected: List[str] = field(default_factory=list)  # (kind, status) that differ from the expected
    latencies: List[float] = field(default_factory=list)  # valid requests, seconds
    seconds: float = 0.0
    rss_before: float = 0.0
    rss_after: float = 0.0
    slow_client_dropped: Optional[bool] = None
    served_during_slowloris: int = 0

    def summary(self) -> Dict:
        lat = sorted(self.latencies) or [float("nan")]
        return {"requests": self.requests, "valid": self.valid, "5xx": self.server_errors, "dropped": self.dropped,
                "unexpected": len(self.unexpected), "median_ms": round(1000 * statistics.median(lat), 1),
                "p95_ms": round(1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1),
                "req_per_s": round(self.requests / max(self.seconds, 1e-9), 1),
                "rss_before_mb": round(self.rss_before, 1), "rss_after_mb": round(self.rss_after, 1),
                "slow_client_dropped": self.slow_client_dropped,
                "served_during_slowloris": self.served_during_slowloris}


class _Client:
    def __init__(self, port: int, rng: random.Random, max_upload: int):
        self.port, self.rng, self.max_upload = port, rng, max_upload
        self.ids: List[str] = []

    def call(self, method: str, path: str, body: bytes = b"", headers: Optional[Dict] = None,
             raw_length: Optional[str] = None) -> Tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            if raw_length is not None:  # a hand-written header the library would not send
                conn.putrequest(method, path)
                conn.putheader("Content-Length", raw_length)
                conn.endheaders()
            else:
                conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def one(self) -> Tuple[str, bool, int, set]:
        """Sends one request of a random kind: (kind, valid, status, expected statuses)."""
        kinds = ["page", "info", "sample", "invert", "invert", "edit", "reference", "download_png",
                 "download_npz", "oversized", "not_image", "multipart", "bad_json", "bad_length", "put", "unknown"]
        kind = self.kind = self.rng.choice(kinds)
        if kind in ("edit", "reference", "download_png", "download_npz") and len(self.ids) < 2:
            kind = "invert"
        ok = {200}
        if kind == "page":
            status, _ = self.call("GET", "/")
        elif kind == "info":
            status, _ = self.call("GET", "/api/info")
        elif kind == "sample":
            status, _ = self.call("GET", f"/api/sample/{self.rng.randrange(3)}.png")
        elif kind == "invert":
            status, body = self.call("POST", "/api/invert", _png(self.rng.randrange(10 ** 6)),
                                     {"Content-Type": "application/octet-stream"})
            if status == 200:
                self.ids.append(json.loads(body)["id"])
        elif kind == "edit":
            sliders = {self.rng.choice(["Smiling", "Bangs"]): self.rng.uniform(-3, 3)}
            status, _ = self.call("POST", "/api/edit", json.dumps({"id": self.ids[-1], "sliders": sliders}).encode())
            ok = {200, 400}  # an attribute without a direction in this editing folder is a 400 message
        elif kind == "reference":
            req = {"id": self.ids[-1], "reference": self.ids[-2], "reference_attribute": "Bangs"}
            status, _ = self.call("POST", "/api/edit", json.dumps(req).encode())
            ok = {200, 400}
        elif kind.startswith("download"):
            status, _ = self.call("GET", f"/api/download/{self.ids[-1]}.{kind.split('_')[1]}")
            ok = {200, 404}  # evicted from memory: a 404 message
        elif kind == "oversized":
            try:
                status, _ = self.call("POST", "/api/invert", b"\0" * (self.max_upload + 1))
            except (BrokenPipeError, ConnectionResetError):
                status = 0  # refused before the body was read: the server closed while we were still sending
            ok = {413, 0}
        elif kind == "not_image":
            status, _ = self.call("POST", "/api/invert", b"%PDF-1.4 not an image" * 10)
            ok = {400}
        elif kind == "multipart":
            status, _ = self.call("POST", "/api/invert", b"--xx\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n\x00\x01",
                                  {"Content-Type": "multipart/form-data; boundary=yy"})
            ok = {400}
        elif kind == "bad_json":
            status, _ = self.call("POST", "/api/edit", b"{not json")
            ok = {400}
        elif kind == "bad_length":
            status, _ = self.call("POST", "/api/invert", raw_length=self.rng.choice(["-5", "abc"]))
            ok = {400}
        elif kind == "put":
            status, _ = self.call("PUT", "/api/invert", b"x")
            ok = {405}
        else:
            status, _ = self.call("GET", f"/../../etc/passwd{self.rng.randrange(100)}")
            ok = {404}
        valid = kind in ("page", "info", "sample", "invert", "edit", "reference", "download_png", "download_npz")
        return kind, valid, status, ok


def run_load(port: int, clients: int, requests: int, seed: int, max_upload: int) -> LoadReport:
    """``requests`` requests spread over ``clients`` threads; returns the report (RSS of this process)."""
    report = LoadReport(rss_before=rss_mb())
    lock = threading.Lock()
    per = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def worker(i: int) -> None:
        c = _Client(port, random.Random(seed * 1000 + i), max_upload)
        for _ in range(per[i]):
            t0 = time.perf_counter()
            try:
                kind, valid, status, ok = c.one()
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    report.requests += 1
                    report.dropped += 1
                    report.unexpected.append(f"{getattr(c, 'kind', '?')}: connection failed: {type(e).__name__}")
                continue
            dt = time.perf_counter() - t0
            with lock:
                report.requests += 1
                report.server_errors += status >= 500
                if status not in ok:
                    report.unexpected.append(f"{kind}: {status}")
                if valid:
                    report.valid += 1
                    report.latencies.append(dt)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - t0
    report.rss_after = rss_mb()
    return report


def slowloris(port: int, timeout: float, others: int = 5) -> Tuple[bool, int]:
    """A client sends a request one byte every 0.5 s; meanwhile ``others`` normal requests must be
    answered. Returns (the slow connection was closed by the server within its request deadline,
    ``REQUEST_DEADLINE x timeout``, + 3 s; how many of the others were answered with 200)."""
    from style_transformer.web.app import REQUEST_DEADLINE

    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"P")  # the request line is never finished
    served = 0
    c = _Client(port, random.Random(0), 0)
    for _ in range(others):
        status, _ = c.call("GET", "/api/info")
        served += status == 200
    deadline = time.monotonic() + REQUEST_DEADLINE * timeout + 3
    dropped = False
    s.settimeout(0.5)
    payload = b"OST /api/invert HTTP/1.1\r\nHost: x\r\n"
    k = 0
    while time.monotonic() < deadline:
        try:
            s.sendall(payload[k % len(payload): k % len(payload) + 1])
            k += 1
            if s.recv(1) == b"":
                dropped = True
                break
        except socket.timeout:
            continue
        except OSError:
            dropped = True
            break
    s.close()
    return dropped, served


def start_server(checkpoint: Optional[str], editing: Optional[str], max_upload_mb: float, timeout: float):
    from style_transformer import load_pipeline
    from style_transformer.web import EditorApp, make_server

    pipe = load_pipeline(checkpoint=checkpoint, editing=editing, device="cpu")
    app = EditorApp(pipe, max_upload_mb=max_upload_mb)
    srv = make_server(app, port=0, timeout=timeout)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, app


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=400, help="requests per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", help="default: the shipped models")
    ap.add_argument("--editing")
    ap.add_argument("--timeout", type=float, default=10.0, help="the server's per-connection read timeout (s)")
    args = ap.parse_args(argv)
    srv, app = start_server(args.checkpoint, args.editing, 1.0, args.timeout)
    port = srv.server_address[1]
    ok = True
    try:
        for r in range(args.rounds):
            rep = run_load(port, args.clients, args.requests, args.seed + r, app.max_upload)
            if r == 0:
                rep.slow_client_dropped, rep.served_during_slowloris = slowloris(port, args.timeout)
            print(json.dumps({"round": r + 1, **rep.summary()}))
            for line in sorted(set(rep.unexpected))[:10]:
                print(f"  unexpected: {line}")
            ok &= rep.server_errors == 0 and rep.dropped == 0 and not rep.unexpected
    finally:
        srv.shutdown()
        srv.server_close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())

"""The web editor under load and abuse (the short round of ``make loadtest``): 16 concurrent clients
mixing valid and invalid requests get no 5xx and no dropped connection; a slowloris client is dropped
after the connection timeout while others are served; memory does not keep growing."""

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from loadtest import run_load, slowloris  # noqa: E402

from style_transformer import load_pipeline  # noqa: E402
from style_transformer.web import EditorApp, make_server  # noqa: E402

pytestmark = pytest.mark.slow  # the server under load: `make test` runs it, `make test-fast` does not


@pytest.fixture(scope="module")
def served(tiny_editing, tiny_checkpoint):
    pipe = load_pipeline(checkpoint=tiny_checkpoint, editing=tiny_editing / "editing", device="cpu")
    app = EditorApp(pipe, max_upload_mb=0.05)
    srv = make_server(app, port=0, timeout=2.0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], app
    srv.shutdown()
    srv.server_close()


def test_concurrent_mixed_requests_get_no_5xx_and_no_drops(served):
    port, app = served
    first = run_load(port, clients=16, requests=160, seed=0, max_upload=app.max_upload)
    assert first.requests == 160 and first.valid > 60
    assert first.server_errors == 0 and first.dropped == 0 and first.unexpected == [], first.unexpected[:5]
    second = run_load(port, clients=16, requests=160, seed=1, max_upload=app.max_upload)
    assert second.server_errors == 0 and second.dropped == 0 and second.unexpected == []
    assert second.rss_after - first.rss_before < 150  # MB over both rounds
    assert len(app.sessions) <= app.max_sessions


def test_a_slowloris_client_is_dropped_and_others_are_served(served):
    port, _ = served
    dropped, served_ok = slowloris(port, timeout=2.0)
    assert dropped and served_ok == 5

"""``benchmarks/bench_gpu.py`` runs end to end on the CPU (its small cases), and its rows hold up."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # heavy: a benchmark run (about a minute on two cores)
def test_bench_gpu_cpu_mode(tmp_path):
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--models",
                        "default", "--batches", "2", "--train-batches", "2", "--train-steps", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    inv = [x for x in rows if x["section"] == "inversion"]
    assert {(x["ops"], x["precision"], x["mode"]) for x in inv} == {
        (o, p, "eager") for o in ("ref", "fast") for p in ("fp32", "bf16")}
    by = {(x["ops"], x["precision"]): x for x in inv}
    assert by[("ref", "fp32")]["max_diff_images"] == 0  # the baseline itself
    # the two op implementations compute the same function; bf16 differs, but boundedly
    assert by[("fast", "fp32")]["max_diff_images"] < 1e-4 and by[("fast", "fp32")]["max_diff_codes"] < 1e-4
    assert 0 < by[("ref", "bf16")]["max_diff_images"] < 0.5
    assert all(x["images_per_s"] > 0 and x["graph_fallback"] is None for x in inv)
    train = {x["trainer"]: x for x in rows if x["section"] == "training"}
    assert set(train) == {"train-gan", "train-encoder"}
    assert all(x["images_per_s"] > 0 and x["gpu_busy"] is None for x in train.values())
    assert "default        batch   2 fast fp32 eager" in r.stdout

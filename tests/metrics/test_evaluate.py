"""The evaluate command: every method over one folder, the three result files, metric keys."""

import pytest
import csv
import json


from style_transformer.cli import main
from style_transformer.data.synthetic import write_dataset


@pytest.mark.slow  # heavy: full-size network(s)
def test_evaluate_writes_md_csv_json(tiny_checkpoint, tmp_path, capsys):
    write_dataset(tmp_path / "faces", 6, size=32, seed=9)
    out = tmp_path / "eval"
    rc = main(["evaluate", str(tmp_path / "faces"), "--method", f"st:{tiny_checkpoint}", "--method", "wplus",
               "--generator", str(tiny_checkpoint), "--opt-steps", "3", "--out", str(out), "--batch-size", "4",
               "--swd-images", "4", "--device", "cpu"])
    assert rc == 0
    records = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in records] == ["st", "wplus"]
    for r in records:
        assert {"psnr", "mse", "lpips", "ms_ssim", "fid", "ms_per_image_batch1", "ms_per_image_batch8",
                "attribute_agreement"} <= set(r)
        assert r["lpips_net"] == "alex-st" and r["images"] == 6 and 0 <= r["ms_ssim"] <= 1
    assert records[0]["params_encoder"] > 0 and "params_encoder" not in records[1]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["method"] for r in rows] == ["st", "wplus"]
    md = (out / "results.md").read_text()
    assert "| st |" in md and "LPIPS network: alex-st" in md
    assert main(["evaluate", str(tmp_path / "faces"), "--method", "nonsense", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()

"""experiments/training_curves.py: the validation records of several runs, side by side at shared steps."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "training_curves.py"


def _module():
    spec = importlib.util.spec_from_file_location("training_curves", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(folder: Path, vals, speeds):
    folder.mkdir()
    lines = [json.dumps({"step": i + 1, "img_per_s": s}) for i, s in enumerate(speeds)]
    lines += [json.dumps({"step": st, "val/psnr": p, "val/lpips": lp}) for st, p, lp in vals]
    (folder / "log.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "config.json").write_text(json.dumps({"lpips_net": "alex-st"}))
    return folder


def test_shared_steps_only(tmp_path, capsys):
    mod = _module()
    a = _run(tmp_path / "a", [(500, 20.0, 0.1), (1000, 21.5, 0.05), (1500, 22.0, 0.04)], [10, 30, 20])
    b = _run(tmp_path / "b", [(500, 19.0, 0.2), (1000, 20.25, 0.08)], [5])
    assert mod.main([f"st={a}", f"psp={b}"]) == 0
    out = capsys.readouterr().out
    assert "| 500 | 20.00 / 0.1000 | 19.00 / 0.2000 |" in out
    assert "| 1,000 | 21.50 / 0.0500 | 20.25 / 0.0800 |" in out
    assert "1,500" not in out  # only b's steps are shared
    assert "| img/s (median) | 20.0 | 5.0 |" in out and "alex-st" in out


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    mod = _module()
    a = _run(tmp_path / "a", [(500, 20.0, 0.1)], [1])
    with pytest.raises(SystemExit, match="no such file"):
        mod.main([f"st={a}", f"x={tmp_path / 'missing'}"])
    (a / "log.jsonl").write_text("{not json\n")
    with pytest.raises(SystemExit, match="not a JSON line"):
        mod.main([f"st={a}"])
    b = _run(tmp_path / "b", [(700, 20.0, 0.1)], [1])
    c = _run(tmp_path / "c", [(500, 20.0, 0.1)], [1])
    assert mod.main([f"b={b}", f"c={c}"]) == 1
    assert "share no validation step" in capsys.readouterr().err

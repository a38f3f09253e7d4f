"""The one error model at the command line: every command's --help works, and an expected mistake
(a missing path, a wrong preset, a missing device) ends in one message line and exit 2, never a
traceback."""

import argparse

import pytest

from style_transformer.cli import build_parser, main
from style_transformer.errors import (DeviceError, InputError, RunError, StyleTransformerError, UsageError)


def _commands():
    out = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                out += [[name, n] for a in nested for n in a.choices] if nested else [[name]]
    return out


COMMANDS = _commands()


def test_every_command_is_covered_below():
    assert {" ".join(c) for c in COMMANDS} == set(BAD)


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    assert "usage: style-transformer" in capsys.readouterr().out


MISSING = "/nonexistent/in"
BAD = {  # one expected mistake per command: a path that does not exist, or a wrong preset
    "invert": ["invert", MISSING, "--out", "{tmp}/o"],
    "generate": ["generate", "--n", "1", "--generator", MISSING + ".pkl", "--out", "{tmp}/o"],
    "dataset synth": ["dataset", "synth", "--n", "1", "--size", "4", "--out", "{tmp}/o"],
    "fid": ["fid", MISSING, MISSING + "2"],
    "train-gan": ["train-gan", "--data", "{tmp}", "--out", "{tmp}/o", "--preset", "no-such-preset"],
    "train-encoder": ["train-encoder", "--data", "{tmp}", "--out", "{tmp}/o", "--preset", "no-such-preset"],
    "demo": ["demo", MISSING, "--out", "{tmp}/o"],
    "eval-encoder": ["eval-encoder", "--data", MISSING],
    "directions fit": ["directions", "fit", "--latents", MISSING + ".npz", "--labels", MISSING + ".csv",
                       "--out", "{tmp}/o"],
    "directions list": ["directions", "list", "--dir", MISSING],
    "train-editor": ["train-editor", "--latents", MISSING + ".npz", "--labels", MISSING + ".csv",
                     "--out", "{tmp}/o"],
    "edit": ["edit", MISSING, "--attribute", "Smiling", "--out", "{tmp}/o"],
    "eval-editing": ["eval-editing", "--data", MISSING],
    "calibrate": ["calibrate", "--data", MISSING, "--editing", MISSING],
    "evaluate": ["evaluate", MISSING, "--out", "{tmp}/o"],
    "serve": ["serve", "--checkpoint", MISSING + ".pt"],
    "eval-generator": ["eval-generator", "--reference", MISSING],
    "train-classifier": ["train-classifier", "--data", MISSING, "--out", "{tmp}/o"],
    "inspect": ["inspect", MISSING + ".pkl"],
    "convert": ["convert", MISSING + ".pkl", "{tmp}/o.safetensors"],
    "export": ["export", MISSING + ".pt", "{tmp}/o", "--format", "onnx"],
    "invert-video": ["invert-video", MISSING + ".mp4", "--out", "{tmp}/o.mp4"],
    "edit-video": ["edit-video", MISSING + ".mp4", "--attribute", "Smiling", "--out", "{tmp}/o.mp4"],
    "eval-video": ["eval-video", MISSING + ".mp4"],
    "dataset synth-video": ["dataset", "synth-video", "--out", "{tmp}/o.avi"],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_expected_mistake_is_one_line_and_exit_2(name, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in BAD[name]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("style-transformer: error: ")
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_missing_device_is_a_device_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["generate", "--n", "1", "--out", str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "CUDA device" in capsys.readouterr().err


def test_error_classes_share_one_base_with_exit_codes():
    from style_transformer.checkpoints import CheckpointError
    from style_transformer.config import ConfigError
    from style_transformer.data.datasets import LabelError
    from style_transformer.data.images import ImageLoadError
    from style_transformer.editing import DirectionError
    from style_transformer.losses.lpips import LPIPSError
    from style_transformer.metrics.fid import FIDError
    from style_transformer.training import TrainingError

    for cls in (CheckpointError, ConfigError, LabelError, ImageLoadError, DirectionError, LPIPSError, FIDError,
                UsageError, InputError, DeviceError):
        assert issubclass(cls, StyleTransformerError) and cls.exit_code == 2, cls
    assert issubclass(TrainingError, RunError) and TrainingError.exit_code == 1
    # the builtin bases callers may already catch are kept
    assert issubclass(ConfigError, ValueError) and issubclass(TrainingError, RuntimeError)

"""Training survives kill -9: GAN and encoder runs killed with SIGKILL at random moments (many of them
while a checkpoint is written: one is written every step) and resumed each time end with exactly the
weights of an uninterrupted run; a corrupt checkpoint falls back to the previous one."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.slow  # kill -9 of real training processes: `make test` runs it, `make test-fast` does not

GAN_DRIVER = """
import sys
from style_transformer import GeneratorConfig
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.training import GANTrainConfig, GANTrainer
from style_transformer.training.common import previous_checkpoint

cfg = GANTrainConfig(generator=GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8)),
                     batch_size=4, kimg=0.048, checkpoint_every=1, sample_every=10 ** 6, d_reg_every=2,
                     g_reg_every=2, seed=3)
t = GANTrainer(cfg, ImageFolderDataset(sys.argv[1], 32), sys.argv[2])
if t.checkpoint_path.is_file() or previous_checkpoint(t.checkpoint_path).is_file():
    t.load()
print("start", t.step, flush=True)
t.fit(progress=False)
print("done", t.step, flush=True)
"""

ENCODER_DRIVER = """
import dataclasses, sys, torch
from style_transformer import Generator, GeneratorConfig
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.losses import LPIPS
from style_transformer.training import EncoderTrainer, encoder_preset
from style_transformer.training.common import previous_checkpoint

torch.manual_seed(1)
g = Generator(GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16))).eval()
g.latent_avg.copy_(g.mean_latent(256, seed=0))
cfg = dataclasses.replace(encoder_preset("tiny"), steps=12, val_every=10 ** 6, checkpoint_every=1,
                          image_every=10 ** 6, seed=5)
data = ImageFolderDataset(sys.argv[1], 32)
t = EncoderTrainer(cfg, g, data, None, sys.argv[2], lpips=LPIPS.load("alex-st"))
if t.checkpoint_path.is_file() or previous_checkpoint(t.checkpoint_path).is_file():
    t.load()
print("start", t.step, flush=True)
t.fit(progress=False)
print("done", t.step, flush=True)
"""

DISTILL_DRIVER = """
import sys
from style_transformer import GeneratorConfig
from style_transformer.training.common import previous_checkpoint
from style_transformer.training.distill import DistillConfig, DistillTrainer, renderer_generator

g = renderer_generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8)))
cfg = DistillConfig(generator=g, batch_size=4, kimg=0.048, checkpoint_every=1, sample_every=10 ** 6,
                    d_reg_every=2, adv_weight=0.1, seed=3)
t = DistillTrainer(cfg, sys.argv[2])  # no data: the renderer draws the targets (sys.argv[1] unused)
if t.checkpoint_path.is_file() or previous_checkpoint(t.checkpoint_path).is_file():
    t.load()
print("start", t.step, flush=True)
t.fit(progress=False)
print("done", t.step, flush=True)
"""


def _run(driver, data, out, kill_after=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, str(driver), str(data), str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    if kill_after is None:
        t0 = time.perf_counter()
        line = p.stdout.readline()
        t1 = time.perf_counter()
        rest, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        return line + rest, time.perf_counter() - t1 if t1 > t0 else 0.0
    # kill once training has started (the first line), a random moment into it
    line = p.stdout.readline()
    time.sleep(kill_after)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    return line


def _weights(path):
    ck = torch.load(path, weights_only=True)
    parts = [m for m in ("g", "d", "g_ema", "model") if m in ck]
    return {f"{m}.{k}": v for m in parts for k, v in ck[m].items()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from style_transformer.data.synthetic import write_dataset

    d = tmp_path_factory.mktemp("faces")
    write_dataset(d, 8, size=32, seed=0)
    return d


@pytest.mark.parametrize("driver_text", [GAN_DRIVER, ENCODER_DRIVER, DISTILL_DRIVER],
                         ids=["train-gan", "train-encoder", "train-gan-distill"])
def test_sigkill_at_random_moments_then_resume_is_exact(data, tmp_path, driver_text):
    driver = tmp_path / "driver.py"
    driver.write_text(driver_text)
    _, seconds = _run(driver, data, tmp_path / "straight")
    per_step = seconds / 12  # kills land on average about one step into each run
    rng = random.Random(0)
    out = tmp_path / "killed"
    steps, kills = [], 0
    while kills < 10:
        line = _run(driver, data, out, kill_after=rng.uniform(0.0, 2 * per_step))
        if not line.startswith("start"):
            break  # the run finished before the kill
        kills += 1
        start = int(line.split()[1])
        steps.append(start)
    assert kills == 10
    assert steps == sorted(steps), "a resume went back further than the last checkpoint"
    final, _ = _run(driver, data, out)
    assert final.startswith("start") and "done 12" in final
    a = _weights(tmp_path / "straight" / "checkpoint.pt")
    b = _weights(out / "checkpoint.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_corrupt_checkpoint_falls_back_to_the_previous_one(data, tmp_path, capsys, caplog):
    from style_transformer import GeneratorConfig
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.training import GANTrainConfig, GANTrainer
    from style_transformer.training.common import previous_checkpoint

    cfg = GANTrainConfig(generator=GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8)),
                         batch_size=4, kimg=0.016, checkpoint_every=1, seed=3)
    faces = ImageFolderDataset(data, 32)
    t = GANTrainer(cfg, faces, tmp_path / "run")
    t.train_step()
    t.save()
    t.train_step()
    t.save()
    ck = t.checkpoint_path
    assert torch.load(previous_checkpoint(ck), weights_only=True)["step"] == 1
    blob = ck.read_bytes()
    ck.write_bytes(blob[: len(blob) // 2])  # a torn file (what a power loss without fsync could leave)
    resumed = GANTrainer(cfg, faces, tmp_path / "run")
    resumed.load()
    assert resumed.step == 1
    # one warning through logging: on stderr under the CLI's handler, else wherever logging is configured
    err = capsys.readouterr().err + caplog.text
    assert "resuming from the previous checkpoint" in err and str(previous_checkpoint(ck)) in err


EDITOR_DRIVER = """
import sys
from style_transformer.cli import main
print("start", flush=True)
sys.exit(main(["train-editor", "--latents", sys.argv[1] + "/inv/latents.npz", "--labels",
               sys.argv[1] + "/faces/attributes.csv", "--out", sys.argv[2], "--attributes", "Smiling", "Bangs",
               "--epochs", "40", "--editor-steps", "200", "--hidden", "32", "16", "--near-metric", "euclidean",
               "--resume"]))
"""


def test_train_editor_killed_then_resumed_gives_the_same_folder(tiny_editing, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(EDITOR_DRIVER)
    _, work = _run(driver, tiny_editing, tmp_path / "straight")  # seconds after the start line
    rng = random.Random(1)
    out = tmp_path / "killed"
    stages_before = []
    for _ in range(10):
        stages_before.append(len(list((out / ".build").glob("*.safetensors"))) if out.exists() else 0)
        _run(driver, tiny_editing, out, kill_after=rng.uniform(0.0, 0.35 * work))  # about one stage at most
        assert not (out / "editing.json").is_file()  # killed before the end every time
    assert max(stages_before) >= 1  # some runs resumed after finished stages
    final, _ = _run(driver, tiny_editing, out)
    assert not (out / ".build").exists()  # the finished stages are removed with the folder written
    files = sorted(p.relative_to(tmp_path / "straight") for p in (tmp_path / "straight").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            a, b = load_file(tmp_path / "straight" / f), load_file(out / f)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
        else:
            assert (tmp_path / "straight" / f).read_bytes() == (out / f).read_bytes(), f

"""Encoder trainer: it learns, only the encoder and the mapping change, exact resume, best model,
logs, NaN handling, the CLI and torchrun."""

import dataclasses
import json

import pytest
import torch

from style_transformer import Generator, GeneratorConfig, load_model, save_model
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.data.synthetic import write_dataset
from style_transformer.losses import LPIPS
from style_transformer.training import EncoderTrainer, TrainingError, encoder_preset, psnr

GEN = GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16))
CFG = dataclasses.replace(encoder_preset("tiny"), steps=4, val_every=2, checkpoint_every=2, image_every=2, seed=5)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    write_dataset(d, 12, size=32, seed=0)
    return d


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(1)
    g = Generator(GEN).eval()
    g.latent_avg.copy_(g.mean_latent(256, seed=0))
    return g


@pytest.fixture(scope="module")
def lpips():
    return LPIPS.load("alex-st")


def _trainer(faces, generator, lpips, out, cfg=CFG, val=True):
    train = ImageFolderDataset(faces, 32)
    return EncoderTrainer(cfg, generator, train, train if val else None, out, lpips=lpips)


def _weights(t):
    return [v.detach().clone() for v in t.model.state_dict().values()]


def test_psnr_closed_form():
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[0] += 0.2  # mse 0.04 on a peak-to-peak range of 2: 10 log10(4 / 0.04) = 20 dB
    y[1, :, :2] = 1.0  # half the pixels off by 1: mse 0.5 -> 10 log10(8)
    torch.testing.assert_close(psnr(y, x), torch.tensor([20.0, 10 * torch.log10(torch.tensor(8.0)).item()]))


def test_learns_and_only_encoder_and_mapping_change(faces, generator, lpips, tmp_path):
    cfg = dataclasses.replace(CFG, lr=1e-3)
    t = _trainer(faces, generator, lpips, tmp_path / "run", cfg)
    fixed = {k: v.clone() for k, v in t.model.decoder.state_dict().items()}
    x = torch.stack([t.train_set[i] for i in range(4)])
    t.model.encoder.eval()
    with torch.no_grad():
        before = t.losses(x)[0].item()
    t.train_set = torch.utils.data.TensorDataset(x)  # overfit four images
    for _ in range(25):
        t.train_step()
    t.model.encoder.eval()
    with torch.no_grad():
        after = t.losses(x)[0].item()
    assert after < 0.8 * before
    changed = {k for k, v in t.model.decoder.state_dict().items() if not torch.equal(v, fixed[k])}
    assert changed and all(k.startswith("style.") for k in changed)  # the mapping MLP only


def test_synthesis_gets_no_gradient_and_mapping_can_stay_frozen(faces, generator, lpips, tmp_path):
    t = _trainer(faces, generator, lpips, tmp_path / "run", dataclasses.replace(CFG, train_mapping=False))
    fixed = [v.clone() for v in t.model.decoder.state_dict().values()]
    t.train_step()
    assert all(torch.equal(a, b) for a, b in zip(fixed, t.model.decoder.state_dict().values()))
    assert all(p.grad is None for p in t.model.decoder.parameters())


def test_resume_is_exact(faces, generator, lpips, tmp_path):
    straight = _trainer(faces, generator, lpips, tmp_path / "a")
    for _ in range(8):  # past a Lookahead sync (k = 6)
        straight.train_step()
    first = _trainer(faces, generator, lpips, tmp_path / "b")
    for _ in range(5):
        first.train_step()
    first.save()
    resumed = _trainer(faces, generator, lpips, tmp_path / "b")
    resumed.load()
    assert resumed.step == 5
    for _ in range(3):
        resumed.train_step()
    for a, b in zip(_weights(straight), _weights(resumed)):
        assert torch.equal(a, b)


def test_fit_keeps_best_and_logs(faces, generator, lpips, tmp_path):
    t = _trainer(faces, generator, lpips, tmp_path / "run")
    best = t.fit(progress=False)
    assert best == tmp_path / "run" / "best.safetensors"
    model = load_model(best, kind="style_transformer")
    lines = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    vals = [l["val/total"] for l in lines if "val/total" in l]
    assert len(vals) == 2 and t.best == min(vals)
    assert all("val/psnr" in l for l in lines if "val/total" in l)
    # the saved best model reproduces its validation loss
    t.model.load_state_dict(model.state_dict())
    assert t.validate()["val/total"] == pytest.approx(t.best, rel=1e-5)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload().Tags()
    assert {"loss/l2", "loss/lpips", "val/psnr"} <= set(tags["scalars"])
    assert "input|reconstruction" in tags["images"]
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["step_0000002.png",
                                                                                 "step_0000004.png"]


def test_non_finite_loss_stops_and_keeps_checkpoint(faces, generator, lpips, tmp_path):
    t = _trainer(faces, generator, lpips, tmp_path / "run")
    t.train_step()
    saved = t.save().read_bytes()
    with torch.no_grad():
        t.model.encoder.z.fill_(float("nan"))
    with pytest.raises(TrainingError, match="encoder loss became nan"):
        t.train_step()
    assert t.checkpoint_path.read_bytes() == saved


def test_generator_must_fit_the_encoder(faces, lpips, tmp_path):
    g = Generator(dataclasses.replace(GEN, size=64, channels=(32, 32, 16, 16, 8)))  # 10 W+ rows > 8 queries
    with pytest.raises(TrainingError, match="generator needs 10"):
        _trainer(faces, g, lpips, tmp_path / "run")


@pytest.fixture(scope="module")
def gen_file(tmp_path_factory, generator):
    path = tmp_path_factory.mktemp("g") / "g.safetensors"
    save_model(generator, path)
    return path


def test_cli_train_encoder_and_resume(faces, gen_file, tmp_path, capsys):
    from style_transformer.cli import main

    run = tmp_path / "run"
    base = ["train-encoder", "--generator", str(gen_file), "--data", str(faces), "--out", str(run), "--preset", "tiny"]
    assert main(base + ["--steps", "2"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    assert "LPIPS alex-st" in capsys.readouterr().err  # the perceptual network is named
    assert main(base + ["--steps", "2"]) == 2  # would overwrite: refused
    assert main(base + ["--steps", "4", "--resume"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4
    assert (run / "best.safetensors").is_file()
    # the identity loss needs ArcFace weights; the encoder's tokens follow the generator's w width
    assert main(base[:5] + ["--out", str(tmp_path / "x"), "--preset", "tiny", "--id-lambda", "0.1"]) == 2
    capsys.readouterr()
    assert main(base[:5] + ["--out", str(tmp_path / "y"), "--preset", "faces-64", "--steps", "1"]) == 0
    assert "width 32 (preset 'faces-64': 256)" in capsys.readouterr().err
    saved = json.loads((tmp_path / "y" / "config.json").read_text())["encoder"]
    assert saved["d_model"] == 32 and saved["stage_channels"][3] == 32 and saved["n_styles"] == GEN.num_ws
    assert main(base[:5] + ["--out", str(tmp_path / "y"), "--preset", "faces-64", "--steps", "2",
                            "--resume"]) == 0
    assert main(["train-encoder", "--generator", str(faces / "attributes.csv"), "--data", str(faces),
                 "--out", str(tmp_path / "z"), "--preset", "tiny"]) == 2


@pytest.mark.slow  # torchrun: `make test-fast` skips it
def test_torchrun_two_cpu_processes(faces, gen_file, tmp_path):
    import socket
    import subprocess
    import sys

    run = tmp_path / "run"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "style_transformer.cli", "train-encoder", "--generator", str(gen_file),
           "--data", str(faces), "--out", str(run), "--preset", "tiny", "--steps", "2", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2
    assert not torch.equal(ck["rng"][0]["data"], ck["rng"][1]["data"])


def test_torchrun_with_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    """Local process 1 of a node with one GPU: a usage error that says what to do, before any CUDA call."""
    from style_transformer.errors import UsageError
    from style_transformer.training.common import training_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: pytest.fail("set_device must not be reached"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    for name in ("auto", "cuda"):
        with pytest.raises(UsageError, match="local process 1, but this node has 1 CUDA device.*--nproc_per_node 1"):
            training_device(name)


@pytest.mark.slow  # SIGTERM to this very process: `make test` runs it alone, `make test-fast` skips it
def test_stop_signal_saves_at_the_step_boundary(faces, generator, lpips, tmp_path):
    import os
    import signal

    t = _trainer(faces, generator, lpips, tmp_path / "run", dataclasses.replace(CFG, steps=50))
    step = t.train_step
    before = signal.getsignal(signal.SIGTERM)

    def step_then_interrupt():
        logs = step()
        if t.step == 3:
            # SIGTERM (kill; SIGINT is ignored in background jobs, e.g. under nohup) is handled the same
            # way as Ctrl-C: the loop finishes the step, saves, and stops
            os.kill(os.getpid(), signal.SIGTERM)
        return logs

    t.train_step = step_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        t.fit(progress=False)
    ck = torch.load(t.checkpoint_path, weights_only=True)
    assert ck["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


@pytest.mark.parametrize("arch", ["psp", "e4e"])
def test_peers_train_with_the_same_trainer(faces, generator, lpips, tmp_path, arch):
    from style_transformer.models import PSPModel

    cfg = dataclasses.replace(CFG, arch=arch, coarse_ind=2, middle_ind=5, lr=1e-3, delta_lambda=1e-3,
                              progressive_every=2 if arch == "e4e" else 0, w_disc_lambda=0.1 if arch == "e4e" else 0)
    t = _trainer(faces, generator, lpips, tmp_path / "run", cfg)
    assert isinstance(t.model, PSPModel) and t.model.cfg.arch == arch
    mapping = [p.clone() for p in t.model.decoder.style.parameters()]
    x = torch.stack([t.train_set[i] for i in range(4)])
    t.train_set = torch.utils.data.TensorDataset(x)
    t.model.encoder.eval()
    with torch.no_grad():
        before = t.losses(x)[0].item()
    rows = []
    for _ in range(20):
        t.train_step()
        rows.append(t.model.encoder.n_active)
    t.model.encoder.eval()
    with torch.no_grad():
        after, logs, _ = t.losses(x)
    assert after.item() < before
    assert all(torch.equal(a, b) for a, b in zip(mapping, t.model.decoder.style.parameters()))
    if arch == "e4e":
        assert rows[:4] == [1, 1, 2, 2] and "loss/delta" in logs  # one more row every 2 steps
        assert t.w_disc is not None and {"loss/w_disc", "loss/w_disc_r1", "loss/w_adv"} <= set(t.train_step())
        t.save()
        again = _trainer(faces, generator, lpips, tmp_path / "run", cfg)
        again.load()  # the latent discriminator resumes too
        assert all(torch.equal(a, b) for a, b in zip(again.w_disc.parameters(), t.w_disc.parameters()))
        assert t.model.encoder.n_active == 8  # evaluation uses every row, as inference does
    back = load_model(t.save_best())  # a native pSp / e4e checkpoint
    assert isinstance(back, PSPModel) and back.cfg == t.model.cfg


def test_runs_written_before_new_config_fields_resume(faces, generator, lpips, tmp_path):
    """Encoder runs saved before the encoder and generator configs gained fields resume."""
    t = _trainer(faces, generator, lpips, tmp_path / "run")
    t.train_step()
    t.save()
    ck = torch.load(t.checkpoint_path, weights_only=False)
    for key in ("z_dim", "input_height"):
        ck["config"]["encoder"].pop(key)
    for key in ("z_dim", "conv_clamp"):
        ck["generator_config"].pop(key)
    torch.save(ck, t.checkpoint_path)
    resumed = _trainer(faces, generator, lpips, tmp_path / "run")
    resumed.load()
    assert resumed.step == 1

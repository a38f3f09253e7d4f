"""GAN trainer: learning happens, exact resume, rosinality-format checkpoints, NaN handling."""

import pytest
import torch

from style_transformer import GeneratorConfig, load_model
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.data.synthetic import write_dataset
from style_transformer.training import GANTrainConfig, GANTrainer, TrainingError

CFG = GANTrainConfig(generator=GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8)),
                     batch_size=4, kimg=0.016, checkpoint_every=2, d_reg_every=2, g_reg_every=2,
                     path_length_weight=2.0, seed=3)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    write_dataset(d, 8, size=32, seed=0)
    return ImageFolderDataset(d, 32)


def _params(t):
    return [p.detach().clone() for m in (t.g, t.d, t.g_ema) for p in m.state_dict().values()]


def test_resume_is_exact(faces, tmp_path):
    straight = GANTrainer(CFG, faces, tmp_path / "a")
    for _ in range(4):
        straight.train_step()
    first = GANTrainer(CFG, faces, tmp_path / "b")
    for _ in range(2):
        first.train_step()
    first.save()
    # a periodic checkpoint carries its EMA generator's W mean (usable for truncation as it is)
    ck = torch.load(first.checkpoint_path, weights_only=True)
    torch.testing.assert_close(ck["latent_avg"], first.g_ema.mean_latent(4096, seed=CFG.seed))
    resumed = GANTrainer(CFG, faces, tmp_path / "b")
    resumed.load()
    assert resumed.step == 2
    for _ in range(2):
        resumed.train_step()
    for a, b in zip(_params(straight), _params(resumed)):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(_params(straight), _params(GANTrainer(CFG, faces, tmp_path / "c"))))


def test_fit_writes_rosinality_checkpoint_that_loads(faces, tmp_path):
    path = GANTrainer(CFG, faces, tmp_path / "run").fit(progress=False)
    ck = torch.load(path, weights_only=True)
    assert {"g", "d", "g_ema", "g_optim", "d_optim", "latent_avg"} <= set(ck)
    assert "latent_avg" not in ck["g_ema"]
    g = load_model(path, kind="generator")
    torch.testing.assert_close(g.latent_avg, ck["latent_avg"])
    assert (tmp_path / "run" / "config.json").is_file() and (tmp_path / "run" / "log.jsonl").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    tags = events.Tags()
    assert {"loss/d", "loss/g", "loss/r1", "progress/img_per_s"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss/g")] == [1, 2, 3, 4]
    assert "samples" in tags["images"]
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())


def test_non_finite_loss_stops_and_keeps_last_checkpoint(faces, tmp_path):
    t = GANTrainer(CFG, faces, tmp_path / "run")
    t.train_step()
    saved = t.save().read_bytes()
    with torch.no_grad():
        t.d.final_linear[1].bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match="discriminator loss"):
        t.train_step()
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == saved


def test_cli_train_gan_and_resume(tmp_path):
    from style_transformer.cli import main

    write_dataset(tmp_path / "faces", 8, size=32, seed=1)
    run = tmp_path / "run"
    base = ["train-gan", "--data", str(tmp_path / "faces"), "--out", str(run), "--size", "32", "--preset", "tiny-32"]
    assert main(base + ["--kimg", "0.016"]) == 0
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert step == 2
    assert main(base + ["--kimg", "0.016"]) == 2  # would overwrite: refused
    assert main(base + ["--kimg", "0.032", "--resume"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4
    assert main(base[:-2] + ["--preset", "small-64", "--out", str(tmp_path / "x")]) == 2  # size mismatch


@pytest.mark.slow  # torchrun: `make test-fast` skips it
def test_torchrun_two_cpu_processes_and_resume(tmp_path):
    """Multi-process training with torchrun (gloo, 2 CPU processes): ranks stay identical (checked at
    the end of fit), the checkpoint keeps every rank's RNG state, and resume needs the same count."""
    import socket
    import subprocess
    import sys

    write_dataset(tmp_path / "faces", 8, size=32, seed=1)
    run = tmp_path / "run"

    def torchrun(kimg, *extra):
        with socket.socket() as sock:  # a free port for the rendezvous
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(port), "-m", "style_transformer.cli", "train-gan", "--data",
               str(tmp_path / "faces"), "--out", str(run), "--size", "32", "--preset", "tiny-32", "--kimg", kimg,
               "--device", "cpu", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    r = torchrun("0.032")
    assert r.returncode == 0, r.stderr[-2000:]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 2 and ck["world_size"] == 2 and len(ck["rng"]) == 2
    assert not torch.equal(ck["rng"][0]["data"], ck["rng"][1]["data"])  # each rank draws its own data
    r = torchrun("0.064", "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4
    from style_transformer.cli import main

    assert main(["train-gan", "--data", str(tmp_path / "faces"), "--out", str(run), "--size", "32",
                 "--kimg", "0.1", "--resume"]) == 1  # one process cannot continue a 2-process run


def test_snapshots_and_ema_rampup(faces, tmp_path):
    import dataclasses

    cfg = dataclasses.replace(CFG, snapshot_kimg=0.008, ema_rampup=0.5, path_length_weight=0.0)
    t = GANTrainer(cfg, faces, tmp_path / "run")
    before = [p.detach().clone() for p in t.g_ema.parameters()]
    t.train_step()
    # ramp-up: half-life min(ema_kimg * 1000, images seen * rampup) = 4 * 0.5 = 2 images, so the
    # EMA moves by 1 - 0.5 ** (4 / 2) = 0.75 of the way to the trained weights
    for pe, p0, p in zip(t.g_ema.parameters(), before, t.g.parameters()):
        torch.testing.assert_close(pe, p0 + 0.75 * (p.detach() - p0))
    t.fit(progress=False)  # 4 steps of 4 images: a snapshot every 8 images, after steps 2 and 4
    snaps = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snaps == ["g_ema-000000008.safetensors", "g_ema-000000016.safetensors"]
    g = load_model(tmp_path / "run" / "snapshots" / snaps[-1], kind="generator")
    for a, b in zip(g.parameters(), t.g_ema.parameters()):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(g.latent_avg, t.g_ema.mean_latent(4096, seed=cfg.seed))


def test_default_preset_is_the_shipped_architecture():
    """The shipped generator is the faces-64 architecture, distilled from the renderer (conditioned on
    its labels); the encoder's generator is the faces-64 GAN architecture."""
    from style_transformer.pretrained import load_default
    from style_transformer.training import gan_preset
    from style_transformer.training.distill import distill_preset

    assert load_default("generator").cfg == distill_preset("faces-64").generator
    assert load_default("encoder_generator").cfg == gan_preset("faces-64").generator


@pytest.mark.gpu
def test_cuda_training_resumes_exactly(faces, tmp_path):
    straight = GANTrainer(CFG, faces, tmp_path / "a", device="cuda")
    for _ in range(4):
        straight.train_step()
    first = GANTrainer(CFG, faces, tmp_path / "b", device="cuda")
    for _ in range(2):
        first.train_step()
    first.save()
    resumed = GANTrainer(CFG, faces, tmp_path / "b", device="cuda")
    resumed.load()
    for _ in range(2):
        resumed.train_step()
    for a, b in zip(_params(straight), _params(resumed)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)  # cuDNN may pick other kernels


def test_batch_size_can_change_on_resume(faces, tmp_path):
    import dataclasses

    t = GANTrainer(CFG, faces, tmp_path / "run")
    t.train_step()
    t.save()
    ck = torch.load(t.checkpoint_path, weights_only=True)
    assert ck["nimg"] == 4
    del ck["nimg"]  # a checkpoint from before images were counted: step * batch
    torch.save(ck, t.checkpoint_path)
    half = GANTrainer(dataclasses.replace(CFG, batch_size=2), faces, tmp_path / "run")
    half.load()
    assert half.nimg == 4 and half.total_steps == 1 + 6  # 12 more images at 2 per step
    half.fit(progress=False)
    assert half.nimg == 16 and half.step == 7


@pytest.mark.slow  # signals: SIGTERM to a training subprocess
def test_sigterm_saves_and_stops(tmp_path):
    """A background run (where shells make SIGINT ignored) is stopped with SIGTERM: it saves first."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    write_dataset(tmp_path / "faces", 8, size=32, seed=1)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "style_transformer.cli", "train-gan", "--data",
                             str(tmp_path / "faces"), "--out", str(run), "--size", "32", "--preset", "tiny-32",
                             "--kimg", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = run / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-500:]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    last = json.loads(log.read_text().splitlines()[-1])["step"]
    assert ck["step"] == last >= 3  # saved at a step boundary: the last logged step


def test_d_warmup_trains_d_alone_then_both(faces, tmp_path):
    import dataclasses

    cfg = dataclasses.replace(CFG, d_warmup_kimg=0.008, ema_rampup=0.0)  # 2 steps of batch 4
    t = GANTrainer(cfg, faces, tmp_path / "run")
    g0 = {k: v.clone() for k, v in t.g.state_dict().items()}
    e0 = {k: v.clone() for k, v in t.g_ema.state_dict().items()}
    d0 = {k: v.clone() for k, v in t.d.state_dict().items()}
    for _ in range(2):
        logs = t.train_step()
        assert "loss/g" not in logs
    assert all(torch.equal(v, t.g.state_dict()[k]) for k, v in g0.items())
    assert all(torch.equal(v, t.g_ema.state_dict()[k]) for k, v in e0.items())
    assert not all(torch.equal(v, t.d.state_dict()[k]) for k, v in d0.items())
    assert "loss/g" in t.train_step()
    assert not all(torch.equal(v, t.g.state_dict()[k]) for k, v in g0.items())


def test_bf16_autocast_step_trains_and_resumes_exactly(faces, tmp_path, check_exact_resume):
    """amp="bf16": the passes run in bfloat16, the weights stay float32, and resume stays exact."""
    import dataclasses

    cfg = dataclasses.replace(CFG, amp="bf16")
    resumed = check_exact_resume(lambda out: GANTrainer(cfg, faces, out), tmp_path)
    assert all(p.dtype == torch.float32 for p in resumed.g.parameters())
    logs = resumed.train_step()
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    straight = GANTrainer(cfg, faces, tmp_path / "bf16")
    for _ in range(3):
        straight.train_step()
    fp32 = GANTrainer(CFG, faces, tmp_path / "c")
    for _ in range(3):
        fp32.train_step()
    assert not all(torch.equal(a, b) for a, b in zip(_params(straight), _params(fp32)))  # bf16 did run
    with pytest.raises(Exception, match="amp"):
        dataclasses.replace(CFG, amp="fp8")


def test_discriminator_widths_of_its_own(faces, tmp_path, check_exact_resume):
    """d_channels gives D its own widths (G unchanged); the run resumes exactly and a wrong table is
    refused, in the config and on the command line (one line, exit 2)."""
    import dataclasses

    from style_transformer.cli import main

    cfg = dataclasses.replace(CFG, d_channels=(24, 24, 20, 12))
    resumed = check_exact_resume(lambda out: GANTrainer(cfg, faces, out), tmp_path)
    widths = {tuple(w.shape[:2]) for w in resumed.d.state_dict().values() if w.dim() == 4}
    assert (12, 3) in widths and (20, 12) in widths and (24, 20) in widths  # 32 px: 12, 16 px: 20, 8 px: 24
    assert resumed.d.final_linear[1].weight.shape[1] == 24  # the 4 px width
    plain = GANTrainer(CFG, faces, tmp_path / "plain")
    assert [p.shape for p in plain.g.parameters()] == [p.shape for p in resumed.g.parameters()]
    assert GANTrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(Exception, match="d_channels needs 4"):
        dataclasses.replace(CFG, d_channels=(8, 8))
    write_dataset(tmp_path / "f", 8, size=32, seed=1)
    base = ["train-gan", "--data", str(tmp_path / "f"), "--size", "32", "--preset", "tiny-32", "--kimg", "0.008"]
    assert main(base + ["--out", str(tmp_path / "r1"), "--d-channels", "8,8"]) == 2
    assert main(base + ["--out", str(tmp_path / "r2"), "--d-channels", "8,x"]) == 2
    assert not (tmp_path / "r1" / "checkpoint.pt").exists()
    assert main(base + ["--out", str(tmp_path / "r3"), "--d-channels", "16,16,8,8"]) == 0
    saved = GANTrainConfig.from_json((tmp_path / "r3" / "config.json").read_text())
    assert saved.d_channels == (16, 16, 8, 8)
    assert main(base + ["--out", str(tmp_path / "r3"), "--resume", "--kimg", "0.016",
                        "--d-channels", "8,8,8,8"]) == 2


def test_runs_written_before_new_config_fields_resume(faces, tmp_path):
    """A checkpoint whose saved config lacks fields added later (their defaults apply) resumes."""
    t = GANTrainer(CFG, faces, tmp_path / "run")
    t.train_step()
    t.save()
    ck = torch.load(t.checkpoint_path, weights_only=False)
    for key in ("z_dim", "conv_clamp"):
        ck["config"]["generator"].pop(key)
    ck["config"].pop("d_channels")
    torch.save(ck, t.checkpoint_path)
    resumed = GANTrainer(CFG, faces, tmp_path / "run")
    resumed.load()
    assert resumed.step == 1
    ck["config"]["generator"]["style_dim"] = 8  # a real difference is still refused
    torch.save(ck, t.checkpoint_path)
    with pytest.raises(TrainingError, match="differs"):
        GANTrainer(CFG, faces, tmp_path / "run").load()

"""A generator distilled from the renderer: the losses against float64 references, the trainer (exact
resume with the adversarial term, its label distribution, CPU time), the paired PSNR and the CLI."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from style_transformer import GeneratorConfig, load_model
from style_transformer.cli import main
from style_transformer.config import ConfigError
from style_transformer.data.synthetic import LABEL_NAMES, draw_codes, label_distribution, render_codes
from style_transformer.metrics.generator import is_distilled, paired_psnr
from style_transformer.models import Generator
from style_transformer.training.distill import (DistillConfig, DistillTrainer, distill_preset, laplacian_pyramid,
                                                reconstruction_loss, renderer_generator)

GCFG = renderer_generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8)))


def _cfg(**kw):
    return DistillConfig(**{"generator": GCFG, "batch_size": 4, "kimg": 0.016, "checkpoint_every": 2,
                            "d_reg_every": 2, "seed": 3, **kw})


def test_laplacian_pyramid_sums_back_to_the_image():
    img = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    bands = laplacian_pyramid(img, 3)
    assert [b.shape[-1] for b in bands] == [32, 16, 8, 4]
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = band + F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(x, img, rtol=0, atol=1e-12)
    # each band-pass level of a constant image is zero
    flat = laplacian_pyramid(torch.full((1, 3, 16, 16), 0.3, dtype=torch.float64), 2)
    assert all(b.abs().max() < 1e-12 for b in flat[:-1])


def test_reconstruction_losses_against_float64_references():
    a, b = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1, torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1
    cfg = _cfg(loss="l1")
    ref = np.abs(a.numpy() - b.numpy()).mean()
    half = lambda x: x.reshape(2, 3, 8, 2, 8, 2).mean((3, 5))  # noqa: E731
    ref += np.abs(half(a.numpy()) - half(b.numpy())).mean()
    assert math.isclose(reconstruction_loss(a, b, cfg).item(), ref, rel_tol=1e-12)
    cfg = _cfg(loss="pyramid", pyramid_weights=(3.0, 1.0))
    fine_a = a - F.interpolate(F.avg_pool2d(a, 2), scale_factor=2, mode="bilinear", align_corners=False)
    fine_b = b - F.interpolate(F.avg_pool2d(b, 2), scale_factor=2, mode="bilinear", align_corners=False)
    ref = (3 * (fine_a - fine_b).abs().mean() + (F.avg_pool2d(a, 2) - F.avg_pool2d(b, 2)).abs().mean()) / 4
    assert math.isclose(reconstruction_loss(a, b, cfg).item(), ref.item(), rel_tol=1e-12)
    assert reconstruction_loss(a, a, cfg).item() == 0


def test_config_refuses_what_cannot_be_distilled():
    with pytest.raises(ConfigError, match="loss"):
        _cfg(loss="l2")
    with pytest.raises(ConfigError, match="renderer's labels"):
        DistillConfig(generator=GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8)))
    with pytest.raises(ConfigError, match="adv_weight"):
        _cfg(adv_weight=-1.0)
    small_z = renderer_generator(GeneratorConfig(size=32, style_dim=8, n_mlp=2, channels=(16, 16, 16, 8)))
    with pytest.raises(ConfigError, match="coordinates"):
        DistillConfig(generator=small_z)
    # the preset: the faces-64 architecture, conditioned on the renderer's labels
    cfg = distill_preset("faces-64")
    assert cfg.generator.label_names == LABEL_NAMES and cfg.generator.label_combos == 384
    assert DistillConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_trainer_resumes_exactly_with_the_adversarial_term(tmp_path, check_exact_resume):
    resumed = check_exact_resume(lambda out: DistillTrainer(_cfg(adv_weight=0.1), out), tmp_path)
    assert resumed.cpu_s > 0  # CPU time carried over from the first part
    # the label distribution is the renderer's; labels are drawn from it
    np.testing.assert_allclose(resumed.g_ema.label_dist.double().numpy(), label_distribution(), atol=1e-7)
    c = resumed.g_ema.sample_labels(4000, torch.Generator().manual_seed(0))
    smiling = c[:, LABEL_NAMES.index("Smiling")].mean().item()
    assert abs(smiling - 0.5) < 0.05


def test_regression_steps_bring_samples_toward_their_renders(tmp_path):
    torch.manual_seed(0)
    t = DistillTrainer(_cfg(batch_size=8), tmp_path)
    before, _ = paired_psnr(t.g, n=32, batch_size=16)
    for _ in range(30):
        logs = t.train_step()
    after, _ = paired_psnr(t.g, n=32, batch_size=16)
    assert after > before + 1.0 and set(logs) >= {"loss/rec", "train/psnr", "cpu_s"}
    grid = t.sample_grid(4)  # renders above, samples below
    assert grid.shape == (3, 4 * 32, 2 * 32)


def test_paired_psnr_against_an_independent_computation():
    torch.manual_seed(1)
    g = Generator(GCFG).eval()
    g.label_dist.copy_(torch.from_numpy(label_distribution()).float())
    assert is_distilled(g)
    mean_db, pooled_db = paired_psnr(g, n=6, seed=5, batch_size=4)
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    values, total = [], 0.0
    for n in (4, 2):
        z, c = draw_codes(n, g.z_dim, gen)
        target = render_codes(z, c, 32).double().numpy()
        with torch.no_grad():
            img = g([z], randomize_noise=True, c=c)[0].numpy()
        img = np.floor(np.clip((img + 1) / 2, 0, 1) * 255) / 127.5 - 1  # 8-bit as saved (truncating)
        mse = ((img - target) ** 2).reshape(n, -1).mean(1)
        values += list(10 * np.log10(4 / mse))
        total += mse.sum()
    assert math.isclose(mean_db, float(np.mean(values)), rel_tol=1e-6)
    assert math.isclose(pooled_db, 10 * math.log10(4 / (total / 6)), rel_tol=1e-6)
    plain = Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8)))
    assert not is_distilled(plain)
    with pytest.raises(ValueError, match="not a generator distilled"):
        paired_psnr(plain, n=2)


def test_cli_distill_resume_and_eval(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train-gan", "--distill-renderer", "--out", str(out), "--preset", "tiny-32", "--size", "32",
            "--kimg", "0.016", "--batch-size", "8", "--adv-weight", "0.05", "--loss", "l1"]
    assert main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["loss"] == "l1" and cfg["adv_weight"] == 0.05 and cfg["generator"]["label_names"] == list(LABEL_NAMES)
    # --resume knows the run is a distillation from its config
    assert main(["train-gan", "--out", str(out), "--resume", "--kimg", "0.032"]) == 0
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["nimg"] == 32 and ck["cpu_s"] > 0
    g = load_model(out / "checkpoint.pt", kind="generator")
    assert is_distilled(g)
    ref = tmp_path / "ref"
    assert main(["dataset", "synth", "--n", "8", "--size", "32", "--seed", "2000", "--out", str(ref)]) == 0
    capsys.readouterr()
    assert main(["eval-generator", "--generator", str(out / "checkpoint.pt"), "--reference", str(ref), "--n", "8",
                 "--no-fid", "--no-attributes", "--paired", "8", "--json", str(tmp_path / "r.json")]) == 0
    assert "PSNR against the paired renders (8 draws)" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["paired_n"] == 8


@pytest.mark.parametrize("argv, message", [
    (["--distill-renderer", "--data", "x"], "drop --data"),
    (["--distill-renderer", "--conditional"], "conditional"),
    (["--distill-renderer", "--d-warmup-kimg", "1"], "together with the regression"),
    (["--loss", "l1", "--data", "x"], "belong to --distill-renderer"),
    ([], "needs --data"),
])
def test_cli_refusals(tmp_path, capsys, argv, message):
    code = main(["train-gan", "--out", str(tmp_path / "r"), *argv])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


@pytest.mark.slow  # torchrun: `make test-fast` skips it
def test_torchrun_two_processes(tmp_path):
    """Two ranks each draw their own labels, z and renders; gradients are averaged; resume continues."""
    import socket
    import subprocess
    import sys

    run = tmp_path / "run"

    def torchrun(kimg, *extra):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(port), "-m", "style_transformer.cli", "train-gan",
               "--distill-renderer", "--out", str(run), "--size", "32", "--preset", "tiny-32", "--batch-size", "4",
               "--kimg", kimg, "--device", "cpu", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    r = torchrun("0.016", "--adv-weight", "0.1")
    assert r.returncode == 0, r.stderr[-2000:]
    r = torchrun("0.032", "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 4 and ck["world_size"] == 2 and ck["nimg"] == 32
    assert ck["config"]["adv_weight"] == 0.1 and len(ck["rng"]) == 2

"""Conditional StyleGAN2 (NVIDIA's layout): mapping and projection against float64 references, the
joint label distribution, the trainer (exact resume, NaN stop, torchrun) and the CLI."""

import math
import socket
import subprocess
import sys

import pytest
import torch

from style_transformer import GeneratorConfig, load_model
from style_transformer.cli import main
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.data.synthetic import BINARY_ATTRIBUTES, write_dataset
from style_transformer.models import Discriminator, Generator
from style_transformer.training import GANTrainConfig, GANTrainer, TrainingError
from style_transformer.training.gan import conditional_generator, label_distribution

GCFG = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 8))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    write_dataset(d, 12, size=32, seed=0)
    return d, ImageFolderDataset(d, 32, labels=d / "attributes.csv", columns=list(BINARY_ATTRIBUTES))


def _cfg(dataset):
    g = conditional_generator(GCFG, dataset.attribute_names, dataset.label_table())
    return GANTrainConfig(generator=g, batch_size=4, kimg=0.016, checkpoint_every=2, d_reg_every=2, seed=3)


def _lrelu(x):
    return torch.nn.functional.leaky_relu(x, 0.2) * math.sqrt(2)


def _norm(x):
    return x * (x.pow(2).mean(1, keepdim=True) + 1e-8).rsqrt()


def _linear64(layer, x, act):
    y = x @ (layer.weight.double() * layer.scale).T + layer.bias.double() * layer.lr_mul
    return _lrelu(y) if act else y


def test_mapping_and_projection_match_float64_references():
    torch.manual_seed(0)
    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=3, channels=(16, 16, 16, 8), c_dim=5)
    g, d = Generator(cfg), Discriminator(cfg)
    with torch.no_grad():  # non-trivial biases, so every term of the reference matters
        for m in (g, d):
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    p.normal_()
    z, c = torch.randn(6, 16), torch.randn(6, 5)
    # NVIDIA: x = normalize(z), y = normalize(embed(c)), cat, then the MLP
    x = torch.cat([_norm(z.double()), _norm(_linear64(g.embed, c.double(), False))], 1)
    for layer in g.style[1:]:
        x = _linear64(layer, x, True)
    torch.testing.assert_close(g.mapping(z, c).double(), x, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(g.mapping(z, c), g.mapping(z, c + 1))  # the label matters
    # D: logit = <features, mapped label> / sqrt(cmap_dim)
    img = torch.randn(6, 3, 32, 32)[:4]
    c = c[:4]
    feats = {}
    d.final_linear.register_forward_hook(lambda m, i, o: feats.setdefault("f", o))
    logits = d(img, c)
    cmap = _norm(_linear64(d.c_embed, c.double(), False))
    for layer in d.c_mapping[1:]:
        cmap = _linear64(layer, cmap, True)
    ref = (feats["f"].double() * cmap).sum(1, keepdim=True) / math.sqrt(d.cmap_dim)
    torch.testing.assert_close(logits.double(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs labels"):
        d(img)


def test_label_distribution_and_sampling():
    labels = torch.tensor([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.float32)
    dist = label_distribution(labels)
    assert dist.tolist() == [[0, 1, 0.25], [1, 0, 0.5], [1, 1, 0.25]]
    cfg = GeneratorConfig(size=32, style_dim=8, n_mlp=1, channels=(8, 8, 8, 8), c_dim=2,
                          label_names=("a", "b"), label_combos=3)
    g = Generator(cfg)
    g.label_dist.copy_(dist)
    rng = torch.Generator().manual_seed(0)
    draws = g.sample_labels(20000, rng)
    freq = {tuple(r): (draws == torch.tensor(r)).all(1).float().mean().item() for r in ([0, 1], [1, 0], [1, 1])}
    assert abs(freq[(1, 0)] - 0.5) < 0.02 and abs(freq[(0, 1)] - 0.25) < 0.02 and abs(freq[(1, 1)] - 0.25) < 0.02
    given = g.sample_labels(6000, rng, given={"a": 1})
    assert (given[:, 0] == 1).all()
    assert abs(given[:, 1].mean().item() - 1 / 3) < 0.03  # P(b=1 | a=1) = 0.25 / 0.75
    with pytest.raises(ValueError, match="no label 'c'"):
        g.sample_labels(1, given={"c": 1})
    with pytest.raises(ValueError, match="no training label combination"):
        g.sample_labels(1, given={"a": 0, "b": 0})
    with pytest.raises(ValueError, match="named labels"):
        g.class_labels(2, 1)
    onehot = Generator(GeneratorConfig(size=32, style_dim=8, n_mlp=1, channels=(8, 8, 8, 8), c_dim=4))
    assert onehot.class_labels(3, 2).tolist() == [[0, 0, 1, 0]] * 3
    assert (onehot.sample_labels(50, rng).sum(1) == 1).all()
    with pytest.raises(ValueError, match="out of range"):
        onehot.class_labels(1, 4)
    # the mean W of a conditional generator averages over its label distribution, reproducibly
    torch.testing.assert_close(g.mean_latent(256, seed=1), g.mean_latent(256, seed=1))


def test_trainer_draws_fake_labels_from_the_data_and_resumes_exactly(labelled, tmp_path, check_exact_resume):
    _, data = labelled
    cfg = _cfg(data)
    t = GANTrainer(cfg, data, tmp_path / "a")
    table = data.label_table()
    fake = t._fake_labels(64)
    assert all((table == row).all(1).any() for row in fake)  # every fake label is a real label row
    torch.testing.assert_close(t.g.label_dist, label_distribution(table))
    resumed = check_exact_resume(lambda out: GANTrainer(cfg, data, out), tmp_path)
    g = load_model(resumed.save(), kind="generator")
    assert g.cfg.label_names == tuple(BINARY_ATTRIBUTES) and g.cfg.c_dim == len(BINARY_ATTRIBUTES)
    torch.testing.assert_close(g.label_dist, label_distribution(table))


def test_conditional_nan_stop_and_wrong_data(labelled, tmp_path):
    d, data = labelled
    t = GANTrainer(_cfg(data), data, tmp_path / "run")
    t.train_step()
    saved = t.save().read_bytes()
    with torch.no_grad():
        t.d.c_embed.bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match="discriminator loss"):
        t.train_step()
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == saved
    with pytest.raises(TrainingError, match="labelled dataset"):
        GANTrainer(_cfg(data), ImageFolderDataset(d, 32), tmp_path / "x")


def test_cli_conditional_train_generate_convert(tmp_path):
    write_dataset(tmp_path / "faces", 8, size=32, seed=1)
    run = tmp_path / "run"
    base = ["train-gan", "--data", str(tmp_path / "faces"), "--out", str(run), "--size", "32", "--preset",
            "tiny-32", "--conditional"]
    assert main(base + ["--kimg", "0.016"]) == 0
    assert main(base + ["--kimg", "0.032", "--resume"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4
    assert main(base[:-1] + ["--kimg", "0.016", "--out", str(tmp_path / "u")]) == 0
    assert main(base + ["--kimg", "0.032", "--resume", "--out", str(tmp_path / "u")]) == 2  # not conditional
    assert main(base + ["--out", str(tmp_path / "y"), "--labels", str(tmp_path / "none.csv")]) == 2
    ck = run / "checkpoint.pt"
    assert main(["convert", str(ck), str(tmp_path / "g.safetensors")]) == 0
    a, b = load_model(ck, kind="generator"), load_model(tmp_path / "g.safetensors", kind="generator")
    assert a.cfg == b.cfg and a.cfg.conditional
    z = torch.randn(3, a.style_dim)
    torch.testing.assert_close(a.sample_w(z, generator=torch.Generator().manual_seed(0)),
                               b.sample_w(z, generator=torch.Generator().manual_seed(0)))
    out = tmp_path / "smiling"
    assert main(["generate", "--generator", str(ck), "--n", "4", "--labels", "Smiling=1", "--out", str(out)]) == 0
    assert len(list(out.glob("*.png"))) == 4
    # the codes are those of the fixed label: reproduce them through the API
    from style_transformer import load_pipeline

    pipe = load_pipeline(generator=ck, device="cpu")
    import numpy as np

    saved = np.load(out / "latents.npz")
    ws = pipe.sample_ws(4, seed=0, given={"Smiling": 1.0})
    assert np.allclose(saved["sample_0000"], ws[0].numpy())
    assert not np.allclose(saved["sample_0000"], pipe.sample_ws(4, seed=0, given={"Smiling": 0.0})[0].numpy())
    for bad in (["--labels", "Smile=1"], ["--class", "1"], ["--labels", "Smiling=1,Smiling=1,Blond_Hair=1,Black_Hair=1"]):
        assert main(["generate", "--generator", str(ck), "--n", "2", "--out", str(tmp_path / "bad"), *bad]) == 2
    assert not (tmp_path / "bad").exists()
    # an unconditional generator takes no labels
    assert main(["generate", "--generator", str(tmp_path / "u" / "checkpoint.pt"), "--n", "2", "--out",
                 str(tmp_path / "bad2"), "--labels", "Smiling=1"]) == 2
    assert not (tmp_path / "bad2").exists()
    # the shipped generator is distilled from the renderer: conditional on its attributes
    assert main(["generate", "--n", "2", "--out", str(tmp_path / "smiling"), "--labels", "Smiling=1"]) == 0


@pytest.mark.slow  # torchrun: `make test-fast` skips it
def test_torchrun_two_processes_conditional(tmp_path):
    write_dataset(tmp_path / "faces", 8, size=32, seed=1)
    run = tmp_path / "run"

    def torchrun(kimg, *extra):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(port), "-m", "style_transformer.cli", "train-gan", "--data",
               str(tmp_path / "faces"), "--out", str(run), "--size", "32", "--preset", "tiny-32", "--kimg", kimg,
               "--device", "cpu", "--conditional", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    r = torchrun("0.032")
    assert r.returncode == 0, r.stderr[-2000:]
    r = torchrun("0.064", "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 4 and ck["world_size"] == 2 and ck["config"]["generator"]["c_dim"] == 9


def test_warm_start_from_an_unconditional_generator(labelled, tmp_path):
    """--init-generator: a conditional run started from an unconditional generator first draws exactly
    what that generator drew, whatever the label; then it learns to use the label."""
    _, data = labelled
    torch.manual_seed(5)
    source = Generator(GCFG).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not an initialisation the trainer would make itself
    t = GANTrainer(_cfg(data), data, tmp_path / "run")
    t.init_generator(source)
    z, c = torch.randn(4, 16), data.label_table()[:4]
    with torch.no_grad():
        want = source.synthesis(source.mapping(z)[:, None].expand(-1, source.num_ws, -1))
        for g in (t.g, t.g_ema):
            got = g.synthesis(g.mapping(z, c)[:, None].expand(-1, g.num_ws, -1))
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    t.train_step()
    with torch.no_grad():
        assert not torch.allclose(t.g.mapping(z, c), t.g.mapping(z, 1 - c))  # the label is now used
    other = Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=3, channels=(16, 16, 16, 8)))
    with pytest.raises(TrainingError, match="layers differ"):
        t.init_generator(other)
    wider = Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 16, 16)))
    with pytest.raises(TrainingError, match="shape"):
        t.init_generator(wider)


def test_label_free_sampling_of_a_conditional_generator(labelled, tmp_path):
    """generate / eval-generator / directions fit draw each sample's label from the stored joint
    distribution with the sampling RNG: reproducible, and the same codes as drawing by hand."""
    from style_transformer.editing.directions import w_covariance
    from style_transformer.metrics.generator import evaluate_generator

    d, data = labelled
    t = GANTrainer(_cfg(data), data, tmp_path / "run")
    g = t.g_ema
    rng = torch.Generator().manual_seed(4)
    z = torch.randn(5, g.style_dim, generator=rng)
    c = g.sample_labels(5, rng)
    rng = torch.Generator().manual_seed(4)
    z2 = torch.randn(5, g.style_dim, generator=rng)
    torch.testing.assert_close(g.sample_w(z2, generator=rng), g.mapping(z, c))
    from style_transformer.config import AttributeClassifierConfig
    from style_transformer.models import AttributeClassifier

    judge = AttributeClassifier(AttributeClassifierConfig(attributes=BINARY_ATTRIBUTES, size=32, channels=(8,)))
    a = evaluate_generator(g, d, n=8, fid=False, batch_size=4, classifier=judge, seed=1)
    b = evaluate_generator(g, d, n=8, fid=False, batch_size=4, classifier=judge, seed=1)
    assert a.sample_rates == b.sample_rates and a.fd_classifier == b.fd_classifier
    torch.testing.assert_close(w_covariance(g, 64, seed=2), w_covariance(g, 64, seed=2))

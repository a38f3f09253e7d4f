"""The shipped default encoder and generator: the main job and the defaults of every command."""

import numpy as np
import torch
from PIL import Image

from style_transformer import load_pipeline, pretrained
from style_transformer.cli import main
from style_transformer.demo import held_out_faces


def test_default_encoder_renders_with_the_generator_it_was_trained_for():
    """The default pipeline renders the shipped encoder's codes with its own decoder; the shipped
    generator (distilled from the renderer) has the same synthesis architecture, so an encoder can be
    retrained for it."""
    st = pretrained.load_default("style_transformer")
    g = pretrained.load_default("encoder_generator")
    assert st.cfg.generator == g.cfg and st.cfg.encoder.n_styles == g.num_ws
    shipped = pretrained.load_default("generator")
    assert shipped.num_ws == g.num_ws and shipped.cfg.channels == g.cfg.channels and shipped.conditional
    pipe = load_pipeline(device="cpu")
    mine = pipe.generator.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in st.decoder.state_dict().items())
    mine = st.decoder.state_dict()
    for k, v in g.state_dict().items():  # the synthesis network is the shipped generator's, frozen
        if not k.startswith("style.") and k != "latent_avg":
            assert torch.equal(mine[k], v), k
    assert torch.equal(st.decoder.latent_avg, g.latent_avg)


def test_default_pipeline_reconstructs_held_out_faces():
    pipe = load_pipeline(device="cpu")
    faces, _ = held_out_faces(8)
    res = pipe.invert(list(faces))
    assert tuple(res.ws.shape) == (8, 10, 256) and tuple(res.images.shape) == (8, 3, 64, 64)
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
    mse = (res.images.clamp(-1, 1) - x).pow(2).flatten(1).mean(1)
    psnr = 10 * torch.log10(4 / mse)
    assert psnr.mean() > 18  # a trained encoder; random weights give ~8 dB
    torch.testing.assert_close(pipe.generate(res.ws), res.images)


def test_invert_and_demo_without_checkpoint(tmp_path, capsys):
    faces, _ = held_out_faces(2)
    for i, f in enumerate(faces):
        Image.fromarray(f).save(tmp_path / f"f{i}.png")
    assert main(["invert", str(tmp_path / "f0.png"), str(tmp_path / "f1.png"), "--out", str(tmp_path / "inv")]) == 0
    with np.load(tmp_path / "inv" / "latents.npz") as z:
        assert z["f0"].shape == (10, 256)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert "grid:" in out and "mean PSNR" in out
    assert (tmp_path / "demo" / "grid.png").is_file() and (tmp_path / "demo" / "index.html").is_file()
    with np.load(tmp_path / "demo" / "latents.npz") as z:
        assert sorted(z.files) == ["face_0", "face_1", "face_2"]


def test_demo_on_user_images_skips_unreadable_ones(tmp_path, capsys):
    faces, _ = held_out_faces(2)
    (tmp_path / "in").mkdir()
    for i, f in enumerate(faces):
        Image.fromarray(f).save(tmp_path / "in" / f"p{i}.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    assert main(["demo", str(tmp_path / "in"), "--out", str(tmp_path / "demo")]) == 1
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "1 unreadable inputs skipped" in captured.out
    with np.load(tmp_path / "demo" / "latents.npz") as z:
        assert sorted(z.files) == ["p0", "p1"]


def test_model_registry_builds_every_architecture_and_the_shipped_ones():
    """Every named architecture builds; the shipped weights load into theirs with strict=True; the
    training presets use the registry's configs; an unknown name lists the names."""
    import pytest

    from style_transformer import MODEL_PRESETS, create_model, load_model
    from style_transformer.config import ConfigError
    from style_transformer.pretrained import default_path
    from style_transformer.training.encoder import encoder_preset
    from style_transformer.training.gan import gan_preset

    for name in MODEL_PRESETS:
        if name not in ("official-ffhq", "ffhq-1024-generator"):  # the 1024 px ones are large: built below once
            assert create_model(name) is not None
    for kind, preset in (("style_transformer", "faces-64"), ("generator", "faces-64-generator"),
                         ("attribute_classifier", "faces-64-classifier")):
        shipped = load_model(default_path(kind))
        if kind == "generator":  # distilled from the renderer: the architecture conditioned on its labels
            from style_transformer.training.distill import renderer_generator

            assert shipped.cfg == renderer_generator(MODEL_PRESETS[preset])
            continue
        assert shipped.cfg == MODEL_PRESETS[preset]
        create_model(preset).load_state_dict(shipped.state_dict(), strict=True)
    assert gan_preset("faces-64").generator == MODEL_PRESETS["faces-64-generator"]
    assert encoder_preset("faces-64").encoder == MODEL_PRESETS["faces-64"].encoder
    with pytest.raises(ConfigError, match="choose from .*faces-64-generator"):
        create_model("faces64")

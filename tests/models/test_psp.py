"""pSp and e4e: the official key layout, official-format files load to the same model, e4e's codes
are one w plus per-row offsets, and both invert through the pipeline."""

import dataclasses

import pytest
import torch

from style_transformer import load_model, load_pipeline
from style_transformer.config import EncoderConfig, GeneratorConfig, PSPConfig
from style_transformer.models import PSPModel

TINY = PSPConfig(encoder=EncoderConfig(input_size=32, stem_channels=8, stage_channels=(8, 16, 24, 32),
                                       stage_units=(1, 1, 1, 1), se_reduction=4, n_styles=8, d_model=32),
                 generator=GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16)),
                 coarse_ind=2, middle_ind=5)


def test_official_key_layout():
    with torch.device("meta"):
        sd = PSPModel(PSPConfig(generator=GeneratorConfig(size=256))).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    # pSp's FFHQ encoder: heads on 16x16 (4 convs), 32x32 (5) and 64x64 (6) maps
    assert "encoder.styles.0.convs.6.weight" in shapes and "encoder.styles.0.convs.8.weight" not in shapes
    assert "encoder.styles.3.convs.8.weight" in shapes and "encoder.styles.7.convs.10.weight" in shapes
    assert shapes["encoder.styles.17.linear.weight"] == (512, 512)
    assert shapes["encoder.latlayer1.weight"] == (512, 256, 1, 1) and shapes["encoder.latlayer2.weight"] == (512, 128, 1, 1)
    assert shapes["encoder.body.23.res_layer.5.fc1.weight"] == (32, 512, 1, 1)
    assert not any(k.startswith("encoder.z") for k in shapes)


@pytest.mark.parametrize("arch,encoder_type", [("psp", "GradualStyleEncoder"), ("e4e", "Encoder4Editing")])
def test_official_file_loads_to_the_same_model(tmp_path, arch, encoder_type):
    torch.manual_seed(0)
    model = PSPModel(dataclasses.replace(TINY, arch=arch)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
        model.decoder.latent_avg.normal_()
    sd = {k: v for k, v in model.state_dict().items() if k != "decoder.latent_avg"}
    torch.save({"state_dict": {k.replace("encoder.", "encoder.module.", 1): v for k, v in sd.items()},
                "latent_avg": model.decoder.latent_avg.repeat(8, 1), "opts": {"encoder_type": encoder_type}},
               tmp_path / "official.pt")
    loaded = load_model(tmp_path / "official.pt")
    assert isinstance(loaded, PSPModel) and loaded.cfg == model.cfg
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), model.encode(x))
    res = load_pipeline(checkpoint=tmp_path / "official.pt", device="cpu").invert(list(x))
    assert tuple(res.ws.shape) == (2, 8, 32) and tuple(res.images.shape) == (2, 3, 32, 32)


def test_e4e_codes_are_w0_plus_offsets():
    torch.manual_seed(1)
    model = PSPModel(dataclasses.replace(TINY, arch="e4e")).eval()
    enc = model.encoder
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        codes = enc(x)
        c1, c2, c3 = (t for t in _features(enc, x))
        p2 = torch.nn.functional.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=True) + enc.latlayer1(c2)
        p1 = torch.nn.functional.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=True) + enc.latlayer2(c1)
        w0 = enc.styles[0](c3)
        torch.testing.assert_close(codes[:, 0], w0)
        torch.testing.assert_close(codes[:, 1], w0 + enc.styles[1](c3))
        torch.testing.assert_close(codes[:, 3], w0 + enc.styles[3](p2))
        torch.testing.assert_close(codes[:, 7], w0 + enc.styles[7](p1))
        torch.testing.assert_close(enc.deltas(x), codes[:, 1:] - codes[:, :1])


def _features(enc, x):
    from style_transformer.models.encoder import backbone_features

    return backbone_features(enc.input_layer, enc.body, enc.cfg.encoder.feature_indices, x)

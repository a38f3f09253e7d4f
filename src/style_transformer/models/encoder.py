"""The Style Transformer encoder (Hu et al., CVPR 2022) and the full inversion model.

Data flow (shapes for the official preset, 256x256 input):

    img [N,3,256,256] -> IR-SE50 body -> c1 [N,128,64,64] (1/4), c2 [N,256,32,32] (1/8),
                                         c3 [N,512,16,16] (1/16)
    F1 = c3;  F2 = up(F1) + lat1(c2);  F3 = up(F2) + lat2(c1)           (bilinear, align_corners)
    queries = mapping(z) [N,18,512]  (learned z tokens through the generator's mapping MLP)
    queries -> block(F1) -> block(F2) -> block(F3) -> codes; ws = codes + latent_avg

Parameter names follow the official checkpoint (``encoder.module.*`` without ``module.``).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..config import EncoderConfig, StyleTransformerConfig
from .stylegan3 import build_generator


class SEModule(nn.Module):
    """Squeeze-and-excitation gate (fc1/fc2 as bias-free 1x1 convs, as in IR-SE)."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel gate ``[N, C, 1, 1]`` in (0, 1)."""
        return torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class BottleneckIR(nn.Module):
    """ArcFace IR(-SE) residual unit: BN-conv-PReLU-conv(stride)-BN[-SE] + shortcut."""

    def __init__(self, in_ch: int, depth: int, stride: int, se: bool, se_reduction: int):
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        layers: List[nn.Module] = [
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        ]
        if se:
            layers.append(SEModule(depth, se_reduction))
        self.res_layer = nn.Sequential(*layers)
        self.stride = stride
        self.impl = "fast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impl == "ref":
            return self.res_layer(x) + self.shortcut_layer(x)
        if isinstance(self.shortcut_layer, nn.MaxPool2d):
            # MaxPool2d(kernel 1, stride s) is plain subsampling
            shortcut = x if self.stride == 1 else x[:, :, ::self.stride, ::self.stride]
        else:
            shortcut = self.shortcut_layer(x)
        if self.training or torch.is_grad_enabled():
            return self.res_layer(x) + shortcut
        # Inference: the post-conv BN (running statistics), the SE gate and the residual add update
        # the fresh conv output in place; new large tensors cost page faults on CPU.
        bn0, conv1, prelu, conv2, bn4 = list(self.res_layer)[:5]
        r = conv2(prelu(conv1(bn0(x))))
        a = bn4.weight * torch.rsqrt(bn4.running_var + bn4.eps)
        r.mul_(a.view(1, -1, 1, 1)).add_((bn4.bias - bn4.running_mean * a).view(1, -1, 1, 1))
        if len(self.res_layer) > 5:
            r.mul_(self.res_layer[5].gate(r))
        return r.add_(shortcut)


class QueryBlock(nn.Module):
    """Post-norm transformer decoder layer: self-attention among queries, cross-attention into a
    feature map, then a ReLU FFN (DETR-style, no positional encodings; names as the official)."""

    def __init__(self, d_model: int, n_heads: int, ffn_dim: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

        self.n_heads = n_heads
        self.impl = "fast"

    def _attend(self, mha: nn.MultiheadAttention, query: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        # Same math as nn.MultiheadAttention, but key and value (the same tensor) are projected in
        # one matmul and only once, and SDPA does the rest: the cross-attention into 64x64 features
        # is the transformer's only large cost.
        n, t, d = query.shape
        hs = d // self.n_heads
        w, b = mha.in_proj_weight, mha.in_proj_bias
        q = F.linear(query, w[:d], b[:d]).view(n, t, self.n_heads, hs).transpose(1, 2)  # (N, nh, T, hs)
        k, v = F.linear(kv, w[d:], b[d:]).view(n, -1, 2, self.n_heads, hs).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (N, nh, T, hs)
        return mha.out_proj(out.transpose(1, 2).reshape(n, t, d))

    def _cross_attend(self, mha: nn.MultiheadAttention, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        # Exact refactoring for few queries over many memory tokens (T=18 vs S=4096): never project
        # the memory. Per head, q.(Wk m + bk) = (Wk^T q).m + const (the constant cancels in the
        # softmax), and sum_j a_j (Wv m_j + bv) = Wv (sum_j a_j m_j) + bv since the weights sum to 1.
        n, t, d = query.shape
        nh, hs = self.n_heads, d // self.n_heads
        w, b = mha.in_proj_weight, mha.in_proj_bias
        q = F.linear(query, w[:d], b[:d]).view(n, t, nh, hs).transpose(1, 2)  # (N, nh, T, hs)
        qk = q @ w[d:2 * d].view(nh, hs, d) * hs ** -0.5  # (N, nh, T, d): query in memory space
        mem = memory.unsqueeze(1).expand(n, nh, memory.shape[1], d)  # (N, nh, S, d), no copy
        ctx = F.scaled_dot_product_attention(qk, mem, mem, scale=1.0)  # (N, nh, T, d)
        out = ctx @ w[2 * d:].view(nh, hs, d).transpose(1, 2) + b[2 * d:].view(nh, 1, hs)  # (N, nh, T, hs)
        return mha.out_proj(out.transpose(1, 2).reshape(n, t, d))

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        # query [N, T, d], memory [N, S, d] -> [N, T, d]
        if self.impl == "fast":
            q = self.norm1(query + self._attend(self.self_attn, query, query))
            q = self.norm2(q + self._cross_attend(self.multihead_attn, q, memory))
        else:
            q = self.norm1(query + self.self_attn(query, query, query, need_weights=False)[0])
            q = self.norm2(q + self.multihead_attn(q, memory, memory, need_weights=False)[0])
        return self.norm3(q + self.linear2(F.relu(self.linear1(q))))


def ir_se_backbone(cfg: EncoderConfig) -> Tuple[nn.Sequential, nn.Sequential]:
    """The IR(-SE) input layer and body of ``cfg`` (ArcFace / pSp / Style Transformer key layout)."""
    input_layer = nn.Sequential(nn.Conv2d(cfg.input_nc, cfg.stem_channels, 3, 1, 1, bias=False),
                                nn.BatchNorm2d(cfg.stem_channels), nn.PReLU(cfg.stem_channels))
    units: List[nn.Module] = []
    in_ch = cfg.stem_channels
    for depth, n_units in zip(cfg.stage_channels, cfg.stage_units):
        for u in range(n_units):
            units.append(BottleneckIR(in_ch, depth, 2 if u == 0 else 1, cfg.se, cfg.se_reduction))
            in_ch = depth
    return input_layer, nn.Sequential(*units)


def backbone_features(input_layer: nn.Module, body: nn.Sequential, indices: Tuple[int, int, int],
                      img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c1 at 1/4, c2 at 1/8, c3 at 1/16 of the input): the outputs of body units ``indices``."""
    i1, i2, i3 = indices
    x = input_layer(img)
    c1 = c2 = None
    for i, unit in enumerate(body):
        x = unit(x)
        if i == i1:
            c1 = x
        elif i == i2:
            c2 = x
        elif i == i3:
            break
    return c1, c2, x


class StyleEncoder(nn.Module):
    """IR-SE backbone + FPN laterals + three query blocks. Queries come from outside (mapping(z)).

    Args:
        cfg: encoder architecture.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.input_layer, self.body = ir_se_backbone(cfg)
        self.latlayer1 = nn.Conv2d(cfg.stage_channels[2], cfg.d_model, 1)
        self.latlayer2 = nn.Conv2d(cfg.stage_channels[1], cfg.d_model, 1)
        self.z = nn.Parameter(torch.randn(1, cfg.n_styles, cfg.z_dim or cfg.d_model))
        self.transformerlayer_coarse = QueryBlock(cfg.d_model, cfg.n_heads, cfg.ffn_dim)
        self.transformerlayer_medium = QueryBlock(cfg.d_model, cfg.n_heads, cfg.ffn_dim)
        self.transformerlayer_fine = QueryBlock(cfg.d_model, cfg.n_heads, cfg.ffn_dim)
        self.impl = "fast"
        self.impl_changed()

    def impl_changed(self) -> None:
        """Stores conv weights NHWC for the fast path (oneDNN would convert them on every call),
        NCHW for the reference path. Strides only: values, state dicts and checkpoints are unchanged."""
        fmt = torch.channels_last if self.impl == "fast" else torch.contiguous_format
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=fmt)

    def features(self, img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """img ``[N, C, S, S]`` -> (F1 ``[N,d,S/16,S/16]``, F2 ``[N,d,S/8,S/8]``, F3 ``[N,d,S/4,S/4]``)."""
        if self.impl == "fast":
            img = img.contiguous(memory_format=torch.channels_last)  # NHWC: faster oneDNN convolutions
        c1, c2, x = backbone_features(self.input_layer, self.body, self.cfg.feature_indices, img)
        f1 = x
        f2 = F.interpolate(f1, size=c2.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer1(c2)
        f3 = F.interpolate(f2, size=c1.shape[-2:], mode="bilinear", align_corners=True) + self.latlayer2(c1)
        return f1, f2, f3

    def forward(self, img: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """img ``[N, C, S, S]`` in [-1, 1], query ``[N, n_styles, d]`` -> codes ``[N, n_styles, d]``
        (before ``latent_avg`` is added)."""
        for block, feat in zip((self.transformerlayer_coarse, self.transformerlayer_medium,
                                self.transformerlayer_fine), self.features(img)):
            # [N, d, h, w] -> tokens [N, h*w, d]; a free view when the map is NHWC (fast path)
            query = block(query, feat.permute(0, 2, 3, 1).reshape(feat.shape[0], -1, feat.shape[1]))
        return query


class StyleTransformer(nn.Module):
    """The inversion model: encoder + StyleGAN2 decoder (``latent_avg`` lives in the decoder).

    Args:
        cfg: encoder and generator architecture.
    """

    def __init__(self, cfg: StyleTransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = StyleEncoder(cfg.encoder)
        self.decoder = build_generator(cfg.generator)

    def queries(self, batch: int) -> torch.Tensor:
        """The learned z tokens through the mapping MLP, ``[batch, n_styles, d]``."""
        return self.decoder.mapping(self.encoder.z).expand(batch, -1, -1)

    def encode(self, img: torch.Tensor) -> torch.Tensor:
        """img ``[N, C, H, W]`` (``cfg.encoder.input_shape``) in [-1, 1] -> ws ``[N, n_styles, w_dim]``
        (``latent_avg`` added)."""
        expect = (self.cfg.encoder.input_nc, *self.cfg.encoder.input_shape)
        if img.ndim != 4 or tuple(img.shape[1:]) != expect:
            raise ValueError(f"encoder input must be [N, {expect[0]}, {expect[1]}, {expect[2]}], "
                             f"got {tuple(img.shape)}")
        codes = self.encoder(img, self.queries(img.shape[0]))
        return codes + self.decoder.latent_avg

    def forward(self, img: torch.Tensor, randomize_noise: bool = False,
                noise: Optional[list] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Inverts and re-renders. Returns (img ``[N,3,G,G]``, ws ``[N, n_styles, w_dim]``)."""
        ws = self.encode(img)
        return self.decoder.synthesis(ws, noise=noise, randomize_noise=randomize_noise), ws

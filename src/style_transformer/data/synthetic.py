"""Procedural faces with known attributes: the project's offline, labelled domain.

Every face is drawn from signed distance functions (ellipses, rings, capsules) composited back to
front, with one-pixel anti-aliasing from the distance (alpha = clip(0.5 - d / pixel, 0, 1)).
Everything is vectorised over a batch of faces, so rendering costs a few array operations per layer.
Face ``i`` of a dataset with seed ``S`` is a pure function of ``(S, i)``: any subset renders alike.

Binary attributes use CelebA names; continuous factors are recorded beside them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from ..utils import atomic_path

BINARY_ATTRIBUTES: Tuple[str, ...] = (
    "Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Bangs", "No_Beard", "Blond_Hair", "Black_Hair",
    "Wearing_Hat", "Pale_Skin",
)
CONTINUOUS_FACTORS: Tuple[str, ...] = (
    "yaw", "tilt", "face_width", "eye_size", "skin_tone", "hair_hue", "hair_value", "background_hue",
    "background_value", "light_x", "light_strength",
)
ATTRIBUTES: Tuple[str, ...] = BINARY_ATTRIBUTES + CONTINUOUS_FACTORS

# P(attribute = 1); all within [0.2, 0.8] so that every label is learnable both ways.
_RATES = {"Smiling": 0.5, "Mouth_Slightly_Open": 0.45, "Eyeglasses": 0.3, "Bangs": 0.35, "No_Beard": 0.7,
          "Wearing_Hat": 0.25, "Pale_Skin": 0.3}
_HAIR_P = (0.3, 0.3, 0.4)  # blond, black, other (brown / red / grey)

# The range each continuous factor is drawn from, uniformly. ``skin_tone`` depends on Pale_Skin
# (not pale, pale); ``hair_hue`` and ``hair_value`` on the hair category (blond, black, other).
FACTOR_RANGES: Dict[str, object] = {
    "yaw": (-1.0, 1.0), "tilt": (-0.25, 0.25), "face_width": (0.82, 1.15), "eye_size": (0.75, 1.3),
    "skin_tone": ((0.1, 0.65), (0.75, 1.0)),
    "hair_hue": ((0.11, 0.16), (0.0, 1.0), (0.0, 0.09)),
    "hair_value": ((0.75, 0.95), (0.05, 0.18), (0.3, 0.6)),
    "background_hue": (0.0, 1.0), "background_value": (0.3, 0.95), "light_x": (-1.0, 1.0),
    "light_strength": (0.0, 0.35),
}


@dataclass(frozen=True)
class FaceBatch:
    """Rendered faces: images ``[N, S, S, 3]`` uint8 and one array ``[N]`` per attribute."""

    images: np.ndarray
    attributes: Dict[str, np.ndarray]


def sample_attributes(seed: int, indices: Sequence[int]) -> Dict[str, np.ndarray]:
    """Samples the attributes of faces ``indices`` of the dataset with ``seed`` (one RNG per face)."""
    rows: List[List[float]] = []
    for i in indices:
        rng = np.random.default_rng([int(seed), int(i)])
        hair = rng.choice(3, p=_HAIR_P)
        binary = [float(rng.random() < _RATES["Smiling"]), float(rng.random() < _RATES["Mouth_Slightly_Open"]),
                  float(rng.random() < _RATES["Eyeglasses"]), float(rng.random() < _RATES["Bangs"]),
                  float(rng.random() < _RATES["No_Beard"]), float(hair == 0), float(hair == 1),
                  float(rng.random() < _RATES["Wearing_Hat"]), float(rng.random() < _RATES["Pale_Skin"])]
        pale = int(binary[-1])
        # hair colour first (the draw order is part of the dataset): blond light/yellow, black dark,
        # other a spread of browns, reds and greys
        hue = rng.uniform(*FACTOR_RANGES["hair_hue"][hair])
        value = rng.uniform(*FACTOR_RANGES["hair_value"][hair])
        r = FACTOR_RANGES
        cont = [rng.uniform(*r["yaw"]), rng.uniform(*r["tilt"]), rng.uniform(*r["face_width"]),
                rng.uniform(*r["eye_size"]), rng.uniform(*r["skin_tone"][pale]), hue, value,
                rng.uniform(*r["background_hue"]), rng.uniform(*r["background_value"]), rng.uniform(*r["light_x"]),
                rng.uniform(*r["light_strength"])]
        rows.append(binary + cont)
    table = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(ATTRIBUTES))
    return {name: table[:, k] for k, name in enumerate(ATTRIBUTES)}


# -- the factor map of the distilled generator ------------------------------------------------------
# A conditional generator learns the renderer: its label is the binary attributes (drawn with the
# renderer's exact rates), its first ``len(CONTINUOUS_FACTORS)`` coordinates of the normalised z give
# the continuous factors through the normal CDF. Discrete factors never come from z: a smooth network
# cannot draw a step function of its input, and would blend categories the renderer keeps apart.
LABEL_NAMES: Tuple[str, ...] = BINARY_ATTRIBUTES
HAIR_CATEGORIES: Tuple[str, ...] = ("blond", "black", "other")


def attribute_rates() -> Dict[str, float]:
    """P(attribute = 1) of every binary attribute, as ``sample_attributes`` draws them."""
    rates = {name: float(_RATES[name]) for name in _RATES}
    rates["Blond_Hair"], rates["Black_Hair"] = float(_HAIR_P[0]), float(_HAIR_P[1])
    return {name: rates[name] for name in BINARY_ATTRIBUTES}


def label_distribution() -> np.ndarray:
    """The renderer's joint distribution of the binary attributes ``[K, 10]`` (float64): each possible
    row of ``LABEL_NAMES`` values (sorted), then its probability. Seven independent attributes times the
    3-way hair category (one-hot through Blond_Hair / Black_Hair): K = 384, probabilities summing to 1.
    This is what a distilled generator's ``label_dist`` holds."""
    rows = []
    independent = [n for n in BINARY_ATTRIBUTES if n in _RATES]
    for bits in range(2 ** len(independent)):
        values = {n: float((bits >> k) & 1) for k, n in enumerate(independent)}
        p_bits = float(np.prod([_RATES[n] if values[n] else 1 - _RATES[n] for n in independent]))
        for hair, p_hair in enumerate(_HAIR_P):
            row = dict(values, Blond_Hair=float(hair == 0), Black_Hair=float(hair == 1))
            rows.append([row[n] for n in BINARY_ATTRIBUTES] + [p_bits * p_hair])
    table = np.asarray(rows, dtype=np.float64)
    order = np.lexsort(table[:, :-1].T[::-1])  # sorted rows, first column most significant
    return table[order]


def hair_category(labels: np.ndarray) -> np.ndarray:
    """Index into ``HAIR_CATEGORIES`` of label rows ``[N, len(LABEL_NAMES)]``."""
    labels = np.asarray(labels)
    blond = labels[:, LABEL_NAMES.index("Blond_Hair")] > 0.5
    black = labels[:, LABEL_NAMES.index("Black_Hair")] > 0.5
    if np.any(blond & black):
        raise ValueError("a label row has both Blond_Hair and Black_Hair: the hair category is one of three")
    return np.where(blond, 0, np.where(black, 1, 2))


def factors_from_code(z: np.ndarray, labels: np.ndarray) -> Dict[str, np.ndarray]:
    """The renderer's attributes of a distilled generator's input ``(z, labels)``.

    Args:
        z: latents ``[N, z_dim]`` with ``z_dim >= len(CONTINUOUS_FACTORS)``; normalised as the mapping
            network does (``zn = z * sqrt(z_dim) / |z|``), and continuous factor ``k`` is
            ``lo + (hi - lo) * Phi(zn[:, k])`` in its ``FACTOR_RANGES`` range (the one for the row's hair
            category or Pale_Skin where it depends on them).
        labels: 0/1 rows ``[N, len(LABEL_NAMES)]`` in ``LABEL_NAMES`` order.

    Returns:
        One float64 array ``[N]`` per name of ``ATTRIBUTES``: what ``render_faces`` takes.
    """
    from math import sqrt

    import torch

    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    nf = len(CONTINUOUS_FACTORS)
    if z.ndim != 2 or z.shape[1] < nf:
        raise ValueError(f"z must be [N, >= {nf}], got {z.shape}")
    if labels.shape != (len(z), len(LABEL_NAMES)):
        raise ValueError(f"labels must be [{len(z)}, {len(LABEL_NAMES)}], got {labels.shape}")
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    zn = z[:, :nf] * sqrt(z.shape[1]) / np.maximum(norm, 1e-12)
    u = torch.special.ndtr(torch.from_numpy(zn)).numpy()
    hair = hair_category(labels)
    pale = (labels[:, LABEL_NAMES.index("Pale_Skin")] > 0.5).astype(int)
    out = {name: labels[:, k].copy() for k, name in enumerate(LABEL_NAMES)}
    for k, name in enumerate(CONTINUOUS_FACTORS):
        r = np.asarray(FACTOR_RANGES[name], dtype=np.float64)
        if r.ndim == 2:  # per category
            r = r[hair] if name.startswith("hair") else r[pale]
        lo, hi = (r[..., 0], r[..., 1])
        out[name] = lo + (hi - lo) * u[:, k]
    return {name: out[name] for name in ATTRIBUTES}


def draw_codes(n: int, z_dim: int, generator: "torch.Generator") -> Tuple["torch.Tensor", "torch.Tensor"]:
    """``n`` inputs of a distilled generator, drawn on the CPU: ``z ~ N(0, I)`` ``[n, z_dim]`` and
    labels ``[n, len(LABEL_NAMES)]`` from the renderer's joint distribution."""
    import torch

    table = torch.from_numpy(label_distribution()).float()
    rows = torch.multinomial(table[:, -1], n, replacement=True, generator=generator)
    z = torch.randn(n, z_dim, generator=generator)
    return z, table[rows, :-1].contiguous()


def render_codes(z: "torch.Tensor", c: "torch.Tensor", size: int) -> "torch.Tensor":
    """The renderer's images of ``(z, c)`` as ``[N, 3, size, size]`` in [-1, 1] (8-bit, as on disk)."""
    import torch

    attrs = factors_from_code(z.detach().cpu().double().numpy(), c.detach().cpu().numpy())
    pixels = torch.from_numpy(render_faces(attrs, size))
    return pixels.permute(0, 3, 1, 2).float() / 127.5 - 1


def _hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] -> RGB ``[..., 3]``."""
    k = (np.stack([np.full_like(h, 5.0), np.full_like(h, 3.0), np.full_like(h, 1.0)], -1) + h[..., None] * 6) % 6
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def _skin(tone: np.ndarray) -> np.ndarray:
    """Skin tone in [0, 1] (dark to pale) -> RGB ``[N, 3]``."""
    dark, light = np.array([0.36, 0.22, 0.14]), np.array([0.98, 0.86, 0.78])
    return dark + (light - dark) * tone[:, None] ** 0.8


def render_faces(attrs: Dict[str, np.ndarray], size: int = 64) -> np.ndarray:
    """Renders faces from their attributes.

    Args:
        attrs: as returned by ``sample_attributes`` (arrays ``[N]``).
        size: output side in pixels (any size; 64 by default in the CLI).

    Returns:
        uint8 ``[N, size, size, 3]``.
    """
    # float32 throughout: half the memory traffic of float64, ample for 8-bit output
    a = {k: np.asarray(v, dtype=np.float32)[:, None, None] for k, v in attrs.items()}
    n = len(attrs["yaw"])
    px = 2.0 / size  # one pixel in the [-1, 1] frame
    coords = ((np.arange(size) + 0.5) * px - 1.0).astype(np.float32)
    y0, x0 = np.meshgrid(coords, coords, indexing="ij")
    # head tilt: rotate the frame about the face centre
    cy = 0.08
    cos, sin = np.cos(a["tilt"]), np.sin(a["tilt"])
    x = cos * x0 + sin * (y0 - cy)
    y = -sin * x0 + cos * (y0 - cy) + cy
    yaw = a["yaw"]
    fw = 0.5 * a["face_width"]
    shift = 0.13 * yaw  # features slide toward the turned side

    def ellipse(cx, cyy, rx, ry):
        # approximate SDF (exact on the axes), adequate for anti-aliased edges
        q = np.hypot((x - cx) / rx, (y - cyy) / ry)
        q -= 1.0
        q *= np.minimum(rx, ry)
        return q

    inv_px = np.float32(1.0 / px)

    def cover(d):
        d = d * -inv_px
        d += np.float32(0.5)
        return np.clip(d, 0.0, 1.0, out=d)

    img = np.empty((n, size, size, 3), dtype=np.float32)
    scratch = np.empty_like(img)
    bg_top = _hsv(a["background_hue"][..., 0, 0], np.full_like(a["background_hue"][..., 0, 0], 0.35),
                  a["background_value"][..., 0, 0])
    grad = (0.85 + 0.3 * (y0 + 1) / 2)[None, :, :, None].astype(np.float32)
    img[:] = bg_top[:, None, None, :].astype(np.float32) * grad

    def paint(alpha, color):
        color = np.asarray(color, dtype=np.float32)
        if color.ndim == 1:
            color = color[None, None, None, :]
        elif color.ndim == 2:
            color = color[:, None, None, :]
        # in place, one scratch buffer: img * (1 - alpha) + color * alpha
        np.subtract(color, img, out=scratch)
        np.multiply(scratch, alpha[..., None], out=scratch)
        np.add(img, scratch, out=img)

    hair_rgb = _hsv(a["hair_hue"][:, 0, 0], np.full_like(a["hair_hue"][:, 0, 0], 0.55), a["hair_value"][:, 0, 0])
    hair_rgb = np.where((attrs["Black_Hair"] > 0.5)[:, None], hair_rgb * 0.5 + 0.03, hair_rgb)
    skin = _skin(attrs["skin_tone"])
    # shoulders and neck
    shirt = _hsv(a["background_hue"][:, 0, 0] + 0.5, np.full_like(a["yaw"][:, 0, 0], 0.5),
                 np.full_like(a["yaw"][:, 0, 0], 0.45))
    paint(cover(ellipse(0.0, 1.15, 0.75, 0.42)), shirt)
    paint(cover(np.maximum(np.abs(x - 0.5 * shift) - 0.17, np.abs(y - 0.75) - 0.25)), skin * 0.85)
    # hair behind the head
    paint(cover(ellipse(0.0, 0.0, fw + 0.12, 0.78)), hair_rgb * 0.85)
    # face with directional light
    face_d = ellipse(0.0, cy, fw, 0.68)
    light = 1.0 + a["light_strength"] * a["light_x"] * (x / fw)[..., None][..., 0]
    face_col = skin[:, None, None, :] * np.clip(light, 0.5, 1.5)[..., None]
    img += (face_col - img) * cover(face_d)[..., None]
    # ears, visible only outside the face outline
    for side in (-1, 1):
        ear = ellipse(side * (fw + 0.01) + 0.4 * shift, cy, np.full_like(fw, 0.07), np.full_like(fw, 0.13))
        paint(cover(ear) * (1 - cover(face_d)), skin * 0.9)
    # hair on top of the head (hairline), with bangs reaching down the forehead
    top = np.maximum(face_d - 0.02, y - (-0.33))  # head region above the hairline
    paint(cover(np.minimum(top, ellipse(0.0, -0.45, fw + 0.05, 0.35))), hair_rgb)
    bangs = np.maximum(ellipse(0.1 * shift, -0.32, fw * 1.0, 0.25), face_d)
    paint(cover(bangs) * a["Bangs"], hair_rgb * 0.95)
    # beard: lower face below the mouth line, around the chin
    beard = np.maximum(face_d, -(y - 0.38))
    paint(cover(beard) * (1 - a["No_Beard"]) * 0.9, hair_rgb * 0.8)
    # eyes
    es = a["eye_size"]
    for side in (-1, 1):
        ex = side * 0.21 * a["face_width"] + shift
        paint(cover(ellipse(ex, -0.02, 0.085 * es, 0.05 * es)), np.array([0.96, 0.96, 0.96]))
        paint(cover(ellipse(ex + 0.02 * yaw, -0.02, 0.04 * es, 0.04 * es)), np.array([0.12, 0.08, 0.05]))
        brow = np.maximum(np.abs(x - ex) - 0.09, np.abs(y - (-0.13 - 0.02 * es)) - 0.014)
        paint(cover(brow), hair_rgb * 0.7)
        # glasses: a ring around each eye (the bridge follows)
        ring = np.abs(np.sqrt((x - ex) ** 2 + ((y + 0.02) / 0.85) ** 2) - 0.12) - 0.012
        paint(cover(ring) * a["Eyeglasses"], np.array([0.08, 0.08, 0.1]))
    bridge = np.maximum(np.abs(x - shift) - 0.09, np.abs(y + 0.03) - 0.01)
    paint(cover(bridge) * a["Eyeglasses"], np.array([0.08, 0.08, 0.1]))
    # nose
    paint(cover(ellipse(1.4 * shift, 0.17, 0.045, 0.08)), skin * 0.78)
    # mouth: a smile is an arc of a circle below-centred; open adds a dark interior
    mx, my = 1.1 * shift, 0.38
    smile_r = 0.22
    arc = np.abs(np.sqrt((x - mx) ** 2 + (y - (my - smile_r)) ** 2) - smile_r) - 0.016
    arc = np.maximum(arc, np.maximum(np.abs(x - mx) - 0.14, (my - 0.1) - y))
    flat = np.maximum(np.abs(x - mx) - 0.12, np.abs(y - my) - 0.014)
    lips = np.where(a["Smiling"] > 0.5, arc, flat)
    paint(cover(lips), np.array([0.55, 0.18, 0.2]))
    opening = ellipse(mx, my + 0.02 * (a["Smiling"] > 0.5), 0.09, 0.045)
    paint(cover(opening) * a["Mouth_Slightly_Open"], np.array([0.22, 0.04, 0.06]))
    # hat: dome over the head and a brim
    hat_col = _hsv((a["background_hue"][:, 0, 0] + 0.3) % 1, np.full_like(a["yaw"][:, 0, 0], 0.6),
                   np.full_like(a["yaw"][:, 0, 0], 0.5))
    dome = np.maximum(ellipse(0.0, -0.45, fw + 0.1, 0.42), y - (-0.38))
    brim = np.maximum(np.abs(x) - (fw + 0.2), np.abs(y + 0.37) - 0.035)
    paint(cover(np.minimum(dome, brim)) * a["Wearing_Hat"], hat_col)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def animate_attributes(seed: int, n_frames: int, subject: int = 0) -> Dict[str, np.ndarray]:
    """Per-frame attributes of a rendered clip: face ``subject`` of the dataset ``seed`` turning its
    head, with the light moving across and a smile appearing half-way.

    Every factor is smooth in time except the smile, which switches on at the middle frame (a step,
    as the renderer draws a smile). The rest is the subject's own and constant: yaw sweeps -0.6 -> 0.6
    (a half sine), tilt swings +-0.1 (a full sine), ``light_x`` moves -0.8 -> 0.8 linearly at a
    strength of at least 0.25, Smiling is 0 before frame ``n_frames // 2`` and 1 from it.

    Returns:
        one array ``[n_frames]`` per name of ``ATTRIBUTES`` (as ``sample_attributes``).
    """
    if n_frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {n_frames}")
    base = sample_attributes(seed, [subject])
    t = np.linspace(0.0, 1.0, n_frames)
    attrs = {name: np.full(n_frames, base[name][0]) for name in ATTRIBUTES}
    attrs["yaw"] = 0.6 * np.sin(np.pi * (t - 0.5))
    attrs["tilt"] = 0.1 * np.sin(2 * np.pi * t)
    attrs["light_x"] = -0.8 + 1.6 * t
    attrs["light_strength"] = np.full(n_frames, max(float(base["light_strength"][0]), 0.25))
    attrs["Smiling"] = (np.arange(n_frames) >= n_frames // 2).astype(np.float64)
    return attrs


def render_dataset_batch(seed: int, indices: Sequence[int], size: int = 64) -> FaceBatch:
    """Faces ``indices`` of the dataset with ``seed``: images and their attributes."""
    attrs = sample_attributes(seed, indices)
    return FaceBatch(render_faces(attrs, size), attrs)


def write_dataset(out: "os.PathLike[str] | str", n: int, size: int = 64, seed: int = 0, batch_size: int = 256,
                  progress: bool = False) -> Path:
    """Renders faces ``0..n-1`` of the dataset ``seed`` to ``out/NNNNNN.png`` plus ``attributes.csv``.

    The CSV has the file name, then one column per attribute: binary ones as 0/1, continuous
    factors as floats. It is written last, atomically, so a complete CSV means a complete folder.

    Returns:
        The CSV path.
    """
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(n - 1)))
    lines = ["file," + ",".join(ATTRIBUTES)]
    starts = range(0, n, batch_size)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, desc="synth", unit="img")
    try:
        for start in starts:
            idx = list(range(start, min(n, start + batch_size)))
            batch = render_dataset_batch(seed, idx, size)
            for j, i in enumerate(idx):
                name = f"{i:0{width}d}.png"
                with atomic_path(out / name) as tmp:  # a full disk leaves no half-written image
                    Image.fromarray(batch.images[j]).save(tmp, format="PNG", compress_level=1)
                vals = [str(int(batch.attributes[k][j])) if k in BINARY_ATTRIBUTES
                        else f"{batch.attributes[k][j]:.6f}" for k in ATTRIBUTES]
                lines.append(name + "," + ",".join(vals))
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
    csv = out / "attributes.csv"
    with atomic_path(csv) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return csv

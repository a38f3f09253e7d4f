"""Linear latent directions: InterFaceGAN boundaries, GANSpace and SeFa, applied to W+ codes.

A direction is a ``[1, w_dim]`` vector (the same for every W+ row, "W" space) or a ``[num_ws, w_dim]``
one (one per row, "W+" space), the shapes of the boundary ``.npy`` files that InterFaceGAN and e4e
publish ((1, 512) and (18, 512)). Editing adds ``strength * direction`` to the rows in ``layers``.

* InterFaceGAN (Shen et al. 2020): the unit normal of a linear boundary between latents with and
  without an attribute, fitted here by L2-regularised logistic regression or a linear SVM (squared
  hinge), both by L-BFGS in float64 on standardised-free raw latents.
* GANSpace (Harkonen et al. 2020): principal components of mapped ``w = mapping(z)``.
* SeFa (Shen & Zhou 2021): the top eigenvectors of ``A^T A`` where ``A`` stacks the (column
  normalised) style-modulation weights of the chosen layers: the directions that change the
  modulation styles most, in closed form from the generator's weights.

A set of directions lives in a folder: ``directions.json`` (the index) and one ``<name>.npy`` each.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError

from ..utils import PathLike, atomic_path

INDEX = "directions.json"
FORMAT = "style_transformer.directions"


class DirectionError(InputError, ValueError):
    """A direction file or set is missing, malformed or does not fit the latents."""


@dataclass
class Direction:
    """One editing direction.

    Attributes:
        name: e.g. an attribute name (``Smiling``) or ``ganspace_0``.
        vector: float32 ``[1, w_dim]`` (all rows) or ``[num_ws, w_dim]`` (per row), unit norm overall.
        method: ``interfacegan`` | ``ganspace`` | ``sefa`` | ``file``.
        layers: ``(start, stop)`` rows it is applied to (None: all rows).
        info: free-form numbers (e.g. the boundary's training accuracy).
    """

    name: str
    vector: torch.Tensor
    method: str = "file"
    layers: Optional[Tuple[int, int]] = None
    info: Dict[str, float] = field(default_factory=dict)

    def apply(self, ws: torch.Tensor, strength: float, layers: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """``ws [N, L, w_dim]`` -> ``ws + strength * direction`` on rows ``layers`` (default: the
        direction's own, else all). Returns a new tensor."""
        if ws.ndim != 3 or ws.shape[-1] != self.vector.shape[-1]:
            raise DirectionError(f"direction {self.name!r} has width {self.vector.shape[-1]}, latents have shape "
                                 f"{tuple(ws.shape)}")
        v = self.vector.to(ws)
        if v.shape[0] not in (1, ws.shape[1]):
            if v.shape[0] > ws.shape[1]:
                v = v[: ws.shape[1]]  # e.g. an (18, 512) boundary on a generator using fewer rows
            else:
                raise DirectionError(f"direction {self.name!r} has {v.shape[0]} rows, latents have {ws.shape[1]}")
        return ws + strength * v * row_mask(ws, layers or self.layers)


def row_mask(ws: torch.Tensor, layers: Optional[Tuple[int, int]]) -> torch.Tensor:
    """``[L, 1]`` mask of codes ``ws [N, L, w_dim]``: 1 on the W+ rows ``layers = (start, stop)`` (None:
    all rows), 0 elsewhere; a range outside the rows is a ``DirectionError``."""
    start, stop = layers or (0, ws.shape[1])
    if not 0 <= start < stop <= ws.shape[1]:
        raise DirectionError(f"layer range {start}:{stop} is outside the {ws.shape[1]} W+ rows")
    mask = torch.zeros(ws.shape[1], 1, dtype=ws.dtype, device=ws.device)
    mask[start:stop] = 1
    return mask


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm().clamp_min(1e-12)


def fit_boundary(latents: torch.Tensor, labels: torch.Tensor, method: str = "logistic", l2: float = 1e-3,
                 max_iter: int = 200) -> Tuple[torch.Tensor, float, Dict[str, float]]:
    """Linear boundary ``sign(x . n + b)`` between latents with (label 1) and without (0) an attribute.

    Args:
        latents: ``[N, D]`` (W) or ``[N, L, D]`` (W+, fitted flattened).
        labels: ``[N]`` of 0/1.
        method: ``logistic`` (L2-regularised logistic regression) or ``svm`` (linear SVM, squared hinge).
        l2: weight of ``0.5 * |n|^2`` in the mean loss.
        max_iter: L-BFGS iterations.

    Returns:
        (unit normal shaped like one latent, bias of the unnormalised boundary, {"accuracy": training accuracy}).
    """
    if method not in ("logistic", "svm"):
        raise DirectionError(f"unknown boundary method {method!r} (logistic or svm)")
    shape = latents.shape[1:]
    x = latents.reshape(len(latents), -1).double()
    y = labels.double().reshape(-1)
    if len(x) != len(y):
        raise DirectionError(f"{len(x)} latents but {len(y)} labels")
    if not ((y == 0) | (y == 1)).all() or y.min() == y.max():
        raise DirectionError("labels must be 0/1 with both values present")
    mean = x.mean(0)
    xc = x - mean  # centring keeps the bias well conditioned; the normal is the same
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=20, line_search_fn="strong_wolfe")
    s = 2 * y - 1

    def loss_fn():
        opt.zero_grad()
        margin = s * (xc @ w + b)
        data = torch.nn.functional.softplus(-margin) if method == "logistic" else torch.relu(1 - margin).pow(2)
        loss = data.mean() + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(loss_fn)
    with torch.no_grad():
        acc = float(((xc @ w + b > 0).double() == y).double().mean())
        bias = float(b - mean @ w)
    return _unit(w.detach()).float().reshape(shape), bias, {"accuracy": acc}


@torch.no_grad()
def classify_renders(generator, classifier, ws: torch.Tensor, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """0/1 labels ``[N, len(classifier.attributes)]`` of codes ``ws`` (``[N, w_dim]`` or ``[N, L, w_dim]``):
    an image attribute classifier's verdicts on their renders (stored noise, clamped to [-1, 1]), so a
    label says what the code draws."""
    from tqdm import tqdm

    from ..data.images import pool_to_size

    device = next(generator.parameters()).device
    size = getattr(getattr(classifier, "cfg", None), "size", None)
    labels = []
    for i in tqdm(range(0, len(ws), batch_size), desc="classify renders", unit="batch", disable=not progress):
        w = ws[i:i + batch_size].to(device).float()
        if w.ndim == 2:
            w = w[:, None].expand(-1, generator.num_ws, -1)
        img = generator.synthesis(w[:, : generator.num_ws]).float().clamp(-1, 1)
        if size is not None:
            img = pool_to_size(img, size)
        labels.append((classifier.predict(img) > 0.5).float())
    return torch.cat(labels) if labels else torch.empty(0, len(classifier.attributes))


@torch.no_grad()
def labelled_samples(generator, classifier, n: int, seed: int = 0, batch_size: int = 64, progress: bool = False
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """InterFaceGAN's training data: ``n`` random codes ``w = mapping(z)`` of the generator, each labelled
    by an image attribute classifier's verdict on its render (``classify_renders``).

    Returns:
        (w ``[n, w_dim]``, 0/1 labels ``[n, len(classifier.attributes)]``), float32 on CPU.
    """
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.z_dim, generator=rng)
    ws = torch.cat([generator.sample_w(z[i:i + 1024].to(device), generator=rng).float().cpu()
                    for i in range(0, n, 1024)])
    return ws, classify_renders(generator, classifier, ws, batch_size, progress)


def mixed_codes(ws: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """``k`` new codes per code of ``ws [N, L, d]``, ``[k N, L, d]``, each made with a random partner
    code: even rounds style-mix (a random contiguous block of rows, one row to all ``L``, is taken from
    the partner), odd rounds interpolate (``w + t (w_partner - w)``, t ~ U(0, 1)). Labelled by their
    renders (``classify_renders``) they show a W+ classifier codes between the encoder's, where attributes
    change, and which rows carry them."""
    if ws.ndim != 3:
        raise ValueError(f"codes must be [N, L, d], got {tuple(ws.shape)}")
    g = torch.Generator().manual_seed(seed)
    n, rows = ws.shape[0], ws.shape[1]
    out = []
    for r in range(k):
        partner = ws[torch.randint(n, (n,), generator=g)]
        if r % 2 == 0:
            a, b = torch.randint(rows, (2, n), generator=g)
            lo, hi = torch.minimum(a, b).view(-1, 1), torch.maximum(a, b).view(-1, 1)
            take = ((torch.arange(rows).view(1, -1) >= lo) & (torch.arange(rows).view(1, -1) <= hi)).unsqueeze(-1)
            out.append(torch.where(take, partner, ws))
        else:
            t = torch.rand(n, 1, 1, generator=g, dtype=ws.dtype)
            out.append(ws + t * (partner - ws))
    return torch.cat(out) if out else ws[:0]


def w_covariance(generator, n_samples: int = 20000, seed: int = 0) -> torch.Tensor:
    """Covariance ``[w_dim, w_dim]`` (float64, on CPU) of ``w = mapping(z)``, z ~ N(0, I),
    over ``n_samples`` seeded samples: where the generator's codes vary (GANSpace's PCA, the metric of
    classifier edits)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, generator.z_dim, generator=g)
    device = next(generator.parameters()).device
    with torch.no_grad():
        w = torch.cat([generator.sample_w(z[i:i + 4096].to(device), generator=g).cpu()
                       for i in range(0, n_samples, 4096)]).double()
    w = w - w.mean(0)
    return w.T @ w / (len(w) - 1)


def ganspace(generator, n_components: int = 10, n_samples: int = 20000, seed: int = 0
             ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Principal directions of ``w = mapping(z)``, z ~ N(0, I).

    Returns:
        (components ``[n_components, w_dim]`` unit rows, largest variance first; their standard deviations).
    """
    evals, evecs = torch.linalg.eigh(w_covariance(generator, n_samples, seed))
    order = torch.argsort(evals, descending=True)[:n_components]
    return evecs[:, order].T.float().contiguous(), evals[order].clamp_min(0).sqrt().float()


def style_modulations(generator) -> List[List[torch.nn.Module]]:
    """The modulation layers (``EqualLinear`` w -> per-channel styles) that read each W+ row:
    row 0 conv1; row 1 to_rgb1; ``convs[j]`` reads row j + 1 and ``to_rgbs[k]`` row 2k + 3 (rosinality)."""
    rows: List[List[torch.nn.Module]] = [[] for _ in range(generator.num_ws)]
    rows[0].append(generator.conv1.conv.modulation)
    rows[1].append(generator.to_rgb1.conv.modulation)
    for j, conv in enumerate(generator.convs):
        rows[j + 1].append(conv.conv.modulation)
    for k, rgb in enumerate(generator.to_rgbs):
        rows[2 * k + 3].append(rgb.conv.modulation)
    return rows


def modulation_weights(generator, layers: Optional[Sequence[int]] = None) -> torch.Tensor:
    """The style-modulation matrices of W+ rows ``layers`` (default all), stacked:
    ``[sum of their input channels, w_dim]``, equalized-lr scale applied."""
    rows = style_modulations(generator)
    picked = range(len(rows)) if layers is None else layers
    return torch.cat([m.weight * m.scale for r in picked for m in rows[r]]).detach()


def sefa(generator, n_components: int = 10, layers: Optional[Sequence[int]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """SeFa: eigenvectors of ``A^T A`` with ``A`` the column-normalised modulation weights of ``layers``.

    Returns:
        (directions ``[n_components, w_dim]`` unit rows, largest eigenvalue first; the eigenvalues).
    """
    a = modulation_weights(generator, layers).double()
    a = a / a.norm(dim=0, keepdim=True).clamp_min(1e-12)
    evals, evecs = torch.linalg.eigh(a.T @ a)
    order = torch.argsort(evals, descending=True)[:n_components]
    return evecs[:, order].T.float().contiguous(), evals[order].float()


def load_boundary(path: PathLike, name: Optional[str] = None) -> Direction:
    """A published boundary ``.npy`` (InterFaceGAN / e4e layout: (1, w_dim) or (num_ws, w_dim), or (w_dim,))."""
    path = Path(path)
    if not path.is_file():
        raise DirectionError(f"{path}: direction file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for malformed files
        raise DirectionError(f"{path}: not a readable .npy array ({str(e)[:120]})") from None
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise DirectionError(f"{path}: expected finite floats shaped (1, w_dim) or (num_ws, w_dim), got "
                             f"{arr.shape} {arr.dtype}")
    return Direction(name or path.stem, torch.from_numpy(arr.astype(np.float32)), "file")


def save_directions(directions: Sequence[Direction], folder: PathLike) -> Path:
    """Writes ``<name>.npy`` per direction and the ``directions.json`` index (last, atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = {"format": FORMAT, "version": 1, "directions": {}}
    for d in directions:
        file = f"{d.name}.npy"
        with atomic_path(folder / file) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, d.vector.detach().cpu().numpy().astype(np.float32))
        index["directions"][d.name] = {"file": file, "method": d.method,
                                       "layers": list(d.layers) if d.layers else None, "info": d.info}
    with atomic_path(folder / INDEX) as tmp:
        tmp.write_text(json.dumps(index, indent=2))
    return folder / INDEX


def load_directions(folder: PathLike) -> Dict[str, Direction]:
    """Reads a folder written by ``save_directions``."""
    folder = Path(folder)
    path = folder / INDEX
    if not path.is_file():
        raise DirectionError(f"{folder}: no {INDEX} (not a directions folder)")
    try:
        index = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DirectionError(f"{path}: invalid JSON ({str(e)[:120]})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise DirectionError(f"{path}: not a directions index (no format {FORMAT!r})")
    entries = index.get("directions", {})
    if not isinstance(entries, dict) or not all(isinstance(e, dict) for e in entries.values()):
        raise DirectionError(f"{path}: directions must map names to entries")
    out = {}
    for name, entry in entries.items():
        file, layers, info = entry.get("file"), entry.get("layers"), entry.get("info", {})
        if not isinstance(file, str) or Path(file).name != file or not file:
            raise DirectionError(f"{path}: {name}: the file must be a name inside the folder, got {file!r}")
        if layers and not (isinstance(layers, list) and len(layers) == 2 and all(type(v) is int for v in layers)
                           and 0 <= layers[0] < layers[1]):
            raise DirectionError(f"{path}: {name}: layers must be [start, stop] with 0 <= start < stop")
        if not isinstance(info, dict):
            raise DirectionError(f"{path}: {name}: info must be an object")
        d = load_boundary(folder / file, name)
        d.method = str(entry.get("method", "file"))
        d.layers = tuple(layers) if layers else None
        d.info = dict(info)
        out[name] = d
    return out


def describe(d: Direction) -> Dict:
    """A JSON-able summary of a direction (no vector)."""
    info = asdict(d)
    info.pop("vector")
    info["shape"] = list(d.vector.shape)
    return info


judge_codes = classify_renders  # the old name, kept as an alias for one release

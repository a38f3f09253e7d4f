"""Inference API: ``load_pipeline`` -> ``InversionPipeline.invert / generate / sample``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .checkpoints import CheckpointError, load_model
from .data.images import ImageLike, preprocess
from .errors import DeviceError
from .models import Generator, PSPModel, StyleTransformer
from .ops import IMPLS
from .utils import PathLike

if TYPE_CHECKING:
    from .editing.toolkit import EditingModels



def resolve_device(device: Union[str, torch.device] = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("a CUDA device was asked for, but none is available")
    return dev


@dataclass
class InversionResult:
    """Codes and their renders: what ``invert``, ``edit`` and ``sample`` return.

    Attributes:
        ws: ``[N, n_styles, w_dim]`` float32 on CPU: exactly the W+ given to the generator
            (``latent_avg`` included; rows past the generator's ``num_ws`` are unused by it).
        images: the renders ``[N, 3, G, G]`` in [-1, 1] (not clamped) on CPU.

    Unpacks as ``ws, images = result``.
    """

    ws: torch.Tensor
    images: torch.Tensor

    def __iter__(self):
        return iter((self.ws, self.images))


class InversionPipeline:
    """Encoder + generator, batched, device-aware, without gradients.

    Args:
        generator: renders W+ codes.
        model: the Style Transformer used by ``invert`` (None: generation only).
        device: where to run.
        editing: editing folder (loaded on first use), or ``EditingModels`` already loaded.
        graphs: exported graphs (``deploy.ExportedModel``) that encode and render instead of the modules.
        ops: op implementation of the torch modules: ``"auto"`` (``accel.default_ops``: ``ref`` on CUDA;
            on the CPU the modules keep theirs, ``fast`` unless set otherwise), ``"fast"`` or ``"ref"``.
        cuda_graphs: on CUDA, replay the encoder and the synthesis network as CUDA graphs, one per batch
            shape (``accel.GraphedForward``; falls back to eager by itself where recording fails).
    """

    def __init__(self, generator: Generator, model: Optional[Union[StyleTransformer, PSPModel]] = None,
                 device: Union[str, torch.device] = "cpu", editing: Optional[Union[PathLike, "EditingModels"]] = None,
                 graphs: Optional["ExportedModel"] = None, ops: str = "auto", cuda_graphs: bool = True):
        from .accel import GraphedForward, default_ops
        from .models import set_ops_impl

        if ops != "auto" and ops not in IMPLS:
            raise ValueError(f"ops must be 'auto' or one of {IMPLS}, got {ops!r}")
        self.device = resolve_device(device)
        # exported graphs (deploy.ExportedModel) that run encode and generate instead of the torch modules
        self.graphs = graphs
        if graphs is not None and self.device.type != "cpu":
            raise DeviceError(f"the {graphs.runtime} runtime runs on the CPU here; use --runtime torch on {self.device}")
        loaded = editing is not None and not isinstance(editing, (str, os.PathLike))
        self._editing_path = None if loaded else editing
        self._editing = editing if loaded else None
        self.model = model.to(self.device).eval() if model is not None else None
        self.generator = generator.to(self.device).eval()
        if model is not None and generator.style_dim != model.cfg.encoder.d_model:
            raise CheckpointError(f"generator style_dim {generator.style_dim} does not match the encoder's "
                                  f"{model.cfg.encoder.d_model}")
        impl = default_ops(self.device) if ops == "auto" else ops
        if impl is not None:
            for module in (self.model, self.generator):
                if module is not None:
                    set_ops_impl(module, impl)
        self._encoder_forward = GraphedForward(lambda x: self.model.encode(x).float(), cuda_graphs, "encoder")
        self._synthesis_forward = GraphedForward(
            lambda w: self.generator.synthesis(w, randomize_noise=False).float(), cuda_graphs, "synthesis network")

    @classmethod
    def from_pretrained(cls, checkpoint: Optional[PathLike] = None, generator: Optional[PathLike] = None,
                        device: Union[str, torch.device] = "auto", editing: Optional[PathLike] = None,
                        runtime: str = "torch", precision: str = "fp32", ops: str = "auto",
                        cuda_graphs: bool = True) -> "InversionPipeline":
        """Loads checkpoints (native safetensors or official ``.pt``).

        Args:
            checkpoint: Style Transformer checkpoint (needed for ``invert``).
            generator: StyleGAN2 checkpoint to render with (default: the checkpoint's decoder).
                With neither given: the shipped default encoder and the generator it was trained for
                (64x64 faces).
            device: ``"auto"``, ``"cpu"``, ``"cuda"``...
            editing: folder of editing models for ``edit`` (default with the shipped models: the
                shipped editing folder, when the package has one).
            runtime: ``"torch"``, or ``"onnxruntime"`` / ``"openvino"``: encoding and rendering run as
                exported ONNX graphs on that runtime (CPU; exported once into a cache folder, see
                ``deploy.exported_for``); editing works on the codes as with torch.
            precision: ``"fp32"``, or ``"int8"`` (with a graph runtime): the encoder quantised by the
                runtime's own tooling (ONNX Runtime's quantiser; NNCF for OpenVINO). The shipped encoder is calibrated on renders of its training seed;
                other checkpoints: ``style-transformer export CKPT OUT --int8 --calibration DIR``.
            ops, cuda_graphs: as the constructor (torch runtime).

        Returns:
            The pipeline.
        """
        from .deploy.runtime import check_runtime

        check_runtime(runtime, precision)  # before anything is loaded, exported or quantised
        if checkpoint is None and generator is None:  # the shipped default encoder and generator
            from .pretrained import resolve_models

            files = resolve_models(editing=editing if isinstance(editing, (str, os.PathLike)) else None)
            checkpoint, generator = files.checkpoint, files.generator
            editing = editing if editing is not None else files.editing
        model = None
        if checkpoint is not None:
            model = load_model(checkpoint)
            if not isinstance(model, (StyleTransformer, PSPModel)):
                from .checkpoints.io import kind_of

                raise CheckpointError(f"{checkpoint}: this is a {kind_of(model).replace('_', ' ')} checkpoint, but an "
                                      "inversion model (Style Transformer, pSp or e4e) is needed here")
        gen = load_model(generator, kind="generator") if generator is not None else model.decoder
        graphs = None
        if runtime != "torch":
            from .deploy import ExportedModel, exported_for

            if resolve_device(device).type != "cpu":
                device = "cpu"  # the graph runtimes run on the CPU; "auto" means the CPU here
            folder = exported_for(model if model is not None else gen, [checkpoint, generator],
                                  generator=gen if model is not None and generator is not None else None)
            if precision == "int8":
                from .deploy.quantize import ensure_int8_encoder

                ensure_int8_encoder(folder, model, checkpoint, runtime)
            graphs = ExportedModel(folder, runtime, precision)
        return cls(gen, model, device, editing=editing, graphs=graphs, ops=ops, cuda_graphs=cuda_graphs)

    @property
    def runtime(self) -> str:
        """What runs encode and generate: ``"torch"``, ``"onnxruntime"`` or ``"openvino"``."""
        return "torch" if self.graphs is None else self.graphs.runtime

    @property
    def input_size(self) -> int:
        if self.model is None:
            raise CheckpointError("this pipeline has no encoder (load it with a Style Transformer checkpoint)")
        return self.model.cfg.encoder.input_size

    @property
    def input_shape(self) -> Tuple[int, int]:
        """(height, width) the encoder reads (square except for e.g. the official cars model)."""
        if self.model is None:
            raise CheckpointError("this pipeline has no encoder (load it with a Style Transformer checkpoint)")
        return self.model.cfg.encoder.input_shape

    @torch.no_grad()
    def encode(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Images -> W+ ``[N, n_styles, w_dim]`` on CPU (one batch; see ``invert`` for many)."""
        return self._encode(images).cpu()

    def _encode(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """``encode`` leaving the codes where they were computed (the pipeline's device; the graph
        runtimes compute on the CPU): the pipeline's own paths render them from there."""
        x = preprocess(images, self.input_shape)
        if self.graphs is not None:
            return self.graphs.encode(x)
        return self._encoder_forward(x.to(self.device))

    @torch.no_grad()
    def generate(self, ws: torch.Tensor, randomize_noise: bool = False, batch_size: int = 8) -> torch.Tensor:
        """Renders W+ codes.

        Args:
            ws: ``[N, >=num_ws, w_dim]`` W+ (extra rows are ignored), or ``[N, w_dim]`` / ``[w_dim]``
                single w broadcast to every layer.
            randomize_noise: fresh noise instead of the generator's stored buffers.
            batch_size: images per forward pass.

        Returns:
            img ``[N, 3, size, size]`` in [-1, 1] on CPU.
        """
        ws = self.as_wplus(ws)
        if self.graphs is not None:
            if randomize_noise:
                raise ValueError(f"the exported synthesis graph renders with the stored noise; random noise "
                                 f"needs the torch runtime (this pipeline runs {self.runtime})")
            rows = self.generator.num_ws
            out = [self.graphs.synthesize(ws[i: i + batch_size, :rows]) for i in range(0, ws.shape[0], batch_size)]
            return torch.cat(out) if out else torch.empty(0, 3, self.generator.size, self.generator.size)
        # fresh noise per call runs eagerly (a graph would replay the same draw)
        render = ((lambda w: self.generator.synthesis(w, randomize_noise=True).float()) if randomize_noise
                  else self._synthesis_forward)
        out = [render(ws[i: i + batch_size].to(self.device)).cpu()  # codes already on the device stay put
               for i in range(0, ws.shape[0], batch_size)]
        return torch.cat(out) if out else torch.empty(0, 3, self.generator.size, self.generator.size)

    def as_wplus(self, ws: torch.Tensor) -> torch.Tensor:
        """Validates and broadcasts latents to ``[N, rows, w_dim]`` with rows >= num_ws."""
        g = self.generator
        ws = torch.as_tensor(ws, dtype=torch.float32)
        if ws.ndim == 1:
            ws = ws[None]
        if ws.ndim == 2:
            ws = ws[:, None, :].expand(-1, g.num_ws, -1)
        if ws.ndim != 3 or ws.shape[-1] != g.style_dim:
            raise ValueError(f"latents must have width {g.style_dim} (w_dim), got shape {tuple(ws.shape)}")
        if ws.shape[1] < g.num_ws:
            raise ValueError(f"W+ latents need at least {g.num_ws} rows for this generator, got {ws.shape[1]}")
        if not torch.isfinite(ws).all():
            raise ValueError("latents contain NaN or Inf")
        return ws

    @torch.no_grad()
    def invert(self, images: Sequence[ImageLike], batch_size: int = 8, randomize_noise: bool = False,
               progress: bool = False) -> InversionResult:
        """Inverts images into W+ and reconstructs them.

        Args:
            images: PIL images, paths, arrays (HxWx3 uint8) or tensors in [-1, 1].
            batch_size: images per forward pass.
            randomize_noise: fresh noise instead of the stored buffers (not reproducible).
            progress: show a progress bar.

        Returns:
            ``InversionResult`` with ws and reconstructions.
        """
        if not isinstance(images, (list, tuple)):
            images = [images]
        batches = range(0, len(images), batch_size)
        if progress:
            from tqdm import tqdm
            batches = tqdm(batches, desc="invert", unit="batch")
        ws_all: List[torch.Tensor] = []
        img_all: List[torch.Tensor] = []
        for i in batches:
            ws = self._encode(images[i: i + batch_size])  # rendered from the device, then copied out once
            img_all.append(self.generate(ws, randomize_noise=randomize_noise, batch_size=batch_size))
            ws_all.append(ws.cpu())
        return InversionResult(torch.cat(ws_all), torch.cat(img_all))

    def refine(self, images: Sequence[ImageLike], result: Optional[InversionResult] = None, steps: int = 100,
               pti_steps: int = 0, lpips=None, progress: bool = False) -> InversionResult:
        """Refines an inversion by optimisation (``optimize.optimize_latents``: W+, MSE + LPIPS, noise
        regularisation) from the encoder's codes, then optionally PTI (``pti_steps`` of generator tuning).

        Args:
            images: the images ``result`` came from (as ``invert``).
            result: ``invert``'s output for them (default: computed here).
            steps: optimisation steps.
            pti_steps: PTI steps (0: none).
            lpips: perceptual network (default: the offline shift-tolerant LPIPS).
            progress: progress bars.

        Returns:
            ``InversionResult``: refined codes and their renders (with the optimised noise and, after
            PTI, by the tuned generator: such images are not reproducible from the codes alone).
        """
        from .optimize import OptimizeConfig, optimize_latents, pivotal_tuning

        if lpips is None:
            from .losses import LPIPS

            lpips = LPIPS.load("alex-st").to(self.device)
        result = result if result is not None else self.invert(images)
        target = preprocess(list(images) if isinstance(images, (list, tuple)) else [images],
                            self.input_shape).to(self.device)
        cfg = OptimizeConfig(steps=steps, pti_steps=pti_steps)
        ws, noises = optimize_latents(self.generator, target, cfg, init_ws=result.ws.to(self.device), lpips=lpips,
                                      progress=progress)
        gen = pivotal_tuning(self.generator, target, ws, noises, cfg, lpips, progress) if pti_steps else self.generator
        with torch.no_grad():
            images_out = gen.synthesis(ws, noise=noises).float().cpu()
        full = result.ws.clone()
        full[:, : ws.shape[1]] = ws.cpu()  # rows beyond the generator's (unused by it) are kept
        return InversionResult(full, images_out)

    @property
    def editing(self):
        """The ``EditingModels`` used by ``edit`` (loaded on first use)."""
        if self._editing is None:
            from .editing.toolkit import EditingModels

            if self._editing_path is None:
                raise CheckpointError("this pipeline has no editing models: pass editing=FOLDER (what "
                                      "`style-transformer train-editor` writes)")
            self._editing = EditingModels.load(self._editing_path)
        return self._editing

    def edit_ws(self, ws: torch.Tensor, attribute: str, strength: Optional[float] = None,
                ws_ref: Optional[torch.Tensor] = None, method: Optional[str] = None,
                layers: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Edits W+ codes ``[N, L, w_dim]`` (see ``EditingModels.edit``); returns the edited codes on CPU."""
        return self._edit_ws(ws, attribute, strength, ws_ref, method, layers).cpu()

    def _edit_ws(self, ws, attribute, strength=None, ws_ref=None, method=None, layers=None) -> torch.Tensor:
        """``edit_ws`` leaving the codes on the pipeline's device."""
        ws = self.as_wplus(ws).to(self.device)
        if ws_ref is not None:
            ws_ref = self.as_wplus(ws_ref).to(self.device)
        return self.editing.edit(ws, attribute, method=method, strength=strength, ws_ref=ws_ref, layers=layers,
                                 generator=self.generator).detach().float()

    def edit(self, images: Union[Sequence[ImageLike], InversionResult], attribute: str,
             strength: Optional[float] = None, reference: Optional[ImageLike] = None, method: Optional[str] = None,
             layers: Optional[Tuple[int, int]] = None, batch_size: int = 8) -> InversionResult:
        """Inverts images (or takes an ``invert`` result) and edits them.

        Args:
            images: as ``invert``, or its result.
            attribute: attribute name (component index for ganspace/sefa).
            strength: signed strength for direction, classifier, ganspace and sefa edits; for reference
                edits a scale > 0 of the editor's move (default: the editing folder's calibrated one).
            reference: reference image for reference-based editing.
            method: ``interfacegan`` (default without a reference), ``classifier``, ``reference``
                (default with one), ``ganspace``, ``sefa``.
            layers: ``(start, stop)`` W+ rows to edit.
            batch_size: images per forward pass.

        Returns:
            ``InversionResult`` of the edited codes and their renders.
        """
        if isinstance(images, InversionResult):
            ws = images.ws
        else:  # encode only: the edited codes are the only ones rendered, and stay on the device until then
            images = list(images) if isinstance(images, (list, tuple)) else [images]
            ws = torch.cat([self._encode(images[i: i + batch_size]) for i in range(0, len(images), batch_size)])
        ws_ref = self._encode([reference]) if reference is not None else None
        ws = self._edit_ws(ws, attribute, strength=strength, ws_ref=ws_ref, method=method, layers=layers)
        return InversionResult(ws.cpu(), self.generate(ws, batch_size=batch_size))

    def invert_video(self, src: PathLike, out: PathLike, latents: Optional[PathLike] = None, **kwargs):
        """Inverts every frame of the video ``src`` into the video ``out`` (``video.invert_video``:
        smoothing, alignment and the rest as keyword arguments). Returns ``VideoRun``."""
        from .video import invert_video

        return invert_video(self, src, out, latents=latents, **kwargs)

    def edit_video(self, src: PathLike, out: PathLike, attribute: str, strength: Optional[float] = None,
                   reference: Optional[PathLike] = None, **kwargs):
        """Edits ``attribute`` in every frame of the video ``src`` into ``out`` (``video.edit_video``).
        Returns ``VideoRun``."""
        from .video import edit_video

        return edit_video(self, src, out, attribute, strength=strength, reference=reference, **kwargs)

    @torch.no_grad()
    def sample_ws(self, n: int, seed: int = 0, truncation: float = 1.0,
                  labels: Optional[torch.Tensor] = None, given: Optional[Dict[str, float]] = None) -> torch.Tensor:
        """Random W+: z ~ N(0, I) from a seeded CPU generator, mapped, optionally truncated toward
        ``latent_avg``, repeated over the layers. A conditional generator takes ``labels``
        ``[n, c_dim]``, or draws them from its training data's joint label distribution (with the
        labels named in ``given`` fixed). Returns ``[n, num_ws, w_dim]`` on CPU."""
        g = self.generator
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(n, g.z_dim, generator=rng)
        c = g.sample_labels(n, rng, given) if labels is None else labels  # conditional: the data's label mix
        w = torch.cat([g.sample_w(z[i: i + 256].to(self.device), None if c is None else c[i: i + 256].to(self.device))
                       .float().cpu() for i in range(0, n, 256)])
        if truncation != 1.0:
            avg = g.latent_avg.float().cpu()
            w = avg + truncation * (w - avg)
        return w[:, None, :].expand(-1, g.num_ws, -1).contiguous()

    def sample(self, n: int, seed: int = 0, truncation: float = 1.0, batch_size: int = 8,
               labels: Optional[torch.Tensor] = None, given: Optional[Dict[str, float]] = None) -> InversionResult:
        """Random samples (``labels``/``given``: see ``sample_ws``): ``InversionResult`` of the codes
        ``[n, num_ws, w_dim]`` and their renders ``[n, 3, size, size]`` on CPU (unpacks as ``ws, img``)."""
        ws = self.sample_ws(n, seed, truncation, labels=labels, given=given)
        return InversionResult(ws, self.generate(ws, batch_size=batch_size))


def load_pipeline(checkpoint: Optional[PathLike] = None, generator: Optional[PathLike] = None,
                  device: Union[str, torch.device] = "auto", editing: Optional[PathLike] = None,
                  runtime: str = "torch", precision: str = "fp32", ops: str = "auto",
                  cuda_graphs: bool = True) -> InversionPipeline:
    """Loads an ``InversionPipeline`` (see ``InversionPipeline.from_pretrained``); with no arguments,
    the shipped default models. ``runtime``: ``"torch"``, ``"onnxruntime"`` or ``"openvino"``;
    ``precision``: ``"fp32"`` or ``"int8"`` (graph runtimes); ``ops``, ``cuda_graphs``: see
    ``InversionPipeline``."""
    return InversionPipeline.from_pretrained(checkpoint=checkpoint, generator=generator, device=device,
                                             editing=editing, runtime=runtime, precision=precision, ops=ops,
                                             cuda_graphs=cuda_graphs)

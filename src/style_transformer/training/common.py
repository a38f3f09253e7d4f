"""What every trainer here shares: process-group facts, gradient averaging, stop requests, atomic
resume checkpoints with per-rank RNG states, and the run folder's logs (config.json, log.jsonl,
TensorBoard, PNG grids, a progress bar)."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from ..errors import RunError, UsageError

from ..utils import atomic_path

log = logging.getLogger(__name__)


class TrainingError(RunError, RuntimeError):
    """Training cannot go on (non-finite loss, unusable checkpoint or data)."""


def rank_and_world() -> Tuple[int, int]:
    """(rank, world size) of the running process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(params: Iterable[torch.Tensor], world: int) -> None:
    """Multi-process training: every rank's gradients become the mean over ranks (what DDP does;
    explicit, because R1's double backward and lazy regularisation do not fit DDP's reducer)."""
    if world > 1:
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad.div_(world)


def gather_from_ranks(mine: Any, world: int) -> List[Any]:
    """Every rank's ``mine`` in rank order (a collective: every rank must call it)."""
    if world == 1:
        return [mine]
    everyone: List[Any] = [None] * world
    dist.all_gather_object(everyone, mine)
    return everyone


def previous_checkpoint(path: Path) -> Path:
    """Where the checkpoint before ``path``'s current one is kept (``checkpoint.prev.pt``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def write_checkpoint(state: Dict, path: Path, rank: int, world: int) -> Path:
    """Rank 0 writes ``state`` atomically and durably (temp file, fsync, rename), keeping the one
    before as ``previous_checkpoint(path)``; all ranks wait for it.

    At every instant ``path`` is a whole checkpoint (the old one or the new one): the previous file is
    hard-linked aside before the new one is renamed over it, so a kill -9 at any point loses at most
    the step being saved."""
    import os

    if rank == 0:
        path = Path(path)
        prev = previous_checkpoint(path)
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            if path.is_file():
                with atomic_path(prev) as aside:
                    os.unlink(aside)
                    os.link(path, aside)
    if world > 1:
        dist.barrier()
    return path


def read_checkpoint(path: Path, required: Sequence[str], what: str, world: int) -> Dict:
    """Loads a resume checkpoint (``weights_only``) and checks it is one of ``what`` and was written
    by as many processes as this run has (so every rank's data and noise streams continue). An
    unreadable (corrupt, truncated, missing) ``path`` falls back, with one warning line, to the
    previous checkpoint kept beside it."""
    from ..checkpoints import CheckpointError, torch_load_safe

    try:
        ck = torch_load_safe(path)
    except CheckpointError as e:
        prev = previous_checkpoint(path)
        if not prev.is_file():
            raise TrainingError(str(e)) from None
        log.warning("%s; resuming from the previous checkpoint %s", e, prev)
        try:
            ck = torch_load_safe(prev)
        except CheckpointError as e2:
            raise TrainingError(f"{e}; and the previous one: {e2}") from None
        path = prev
    if not isinstance(ck, dict) or any(k not in ck for k in required):
        raise TrainingError(f"{path}: not a {what} checkpoint (no optimiser/RNG state to resume from)")
    if int(ck.get("world_size", 1)) != world:
        raise TrainingError(f"{path}: written by {ck.get('world_size', 1)} processes; resume with as many "
                            f"(this run has {world}) so that every data and noise stream continues")
    return ck


def tile(images: torch.Tensor, cols: int) -> torch.Tensor:
    """``[N, 3, H, W]`` in [-1, 1] -> one grid ``[3, rows*H, cols*W]`` in [0, 1] (white padding)."""
    n, c, h, w = images.shape
    rows = int(math.ceil(n / cols))
    grid = images.new_ones(c, rows * h, cols * w)
    for i, img in enumerate(((images.float() + 1) / 2).clamp(0, 1)):
        grid[:, (i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = img
    return grid


class StopRequests:
    """Ctrl-C (SIGINT) and SIGTERM (``kill``, schedulers; background jobs ignore SIGINT) ask the
    loop to stop at the next step boundary, so the saved state is never half a step. A second
    Ctrl-C stops at once. Handlers are only installed on the main thread."""

    def __init__(self):
        self.requested = False
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested (signal %d): saving after this step", signum)

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class RunLog:
    """The lead rank's outputs in a run folder: ``config.json`` (at start), ``log.jsonl``
    (line-buffered: ``tail -f`` works), TensorBoard scalars and images, PNG grids and a progress bar.
    On other ranks every method does nothing.

    Args:
        out: run folder.
        config: the run's config dict (written as config.json).
        step: the step training starts from (TensorBoard drops later events of an earlier run).
        lead: whether this process writes.
        bar: ``(desc, unit, total, initial)`` for a tqdm bar, or None.
    """

    def __init__(self, out: Path, config: Dict, step: int, lead: bool, bar: Optional[Tuple] = None):
        self.out, self.lead = Path(out), lead
        self.writer = self.file = self.bar = None
        if not lead:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / "config.json") as tmp:
            tmp.write_text(json.dumps(config, indent=2))
        self.writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=step or None)
        self.file = open(self.out / "log.jsonl", "a", buffering=1)
        if bar is not None:
            from tqdm import tqdm

            desc, unit, total, initial = bar
            self.bar = tqdm(total=total, initial=initial, unit=unit, desc=desc)

    def scalars(self, step: int, logs: Dict[str, float]) -> None:
        if not self.lead:
            return
        for k, v in logs.items():
            self.writer.add_scalar(k if "/" in k else f"progress/{k}", v, step)
        self.file.write(json.dumps({"step": step, **logs}) + "\n")

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        """TensorBoard image and ``RUN/samples/step_NNNNNNN.png`` of a ``[3, H, W]`` grid in [0, 1]."""
        if not self.lead:
            return
        from PIL import Image

        self.writer.add_image(tag, grid, step)
        folder = self.out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        arr = (grid.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype("uint8")
        with atomic_path(folder / f"step_{step:07d}.png") as tmp:
            Image.fromarray(arr).save(tmp, format="PNG")

    def progress(self, position: float, postfix: Dict[str, str]) -> None:
        if self.bar is not None:
            self.bar.n = position
            self.bar.refresh()
            self.bar.set_postfix(postfix)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.file.close()
        if self.bar is not None:
            self.bar.close()


# -- setting a run up (what the train-* commands call) ---------------------------------------------
def training_device(name: str):
    """``--device`` of the trainers; under torchrun also joins the process group (NCCL on GPUs with
    one GPU per LOCAL_RANK, gloo on CPU)."""
    import torch

    from ..inference import resolve_device

    device = resolve_device(name)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun
        import torch.distributed as dist

        if device.type == "cuda":
            rank, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
            if rank >= gpus:
                raise UsageError(f"torchrun started local process {rank}, but this node has {gpus} CUDA "
                                 f"device(s), one per process: use --nproc_per_node {gpus}, or --device cpu")
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def use_cache(choice: str, data: str, size: int) -> bool:
    """``--cache``: on, off, or auto (decode into memory when the images fit in 4 GB at ``size``)."""
    if choice != "auto":
        return choice == "on"
    from ..data.images import list_image_files

    n = len(list_image_files(data)) if Path(data).is_dir() else 0
    return n * 3 * size ** 2 <= 4 << 30


def run_config(out: Path, resume: bool, config_cls, preset):
    """A trainer's config: RUN/config.json with ``--resume`` (RUN/checkpoint.pt must exist), else the
    preset (and RUN/checkpoint.pt must not exist: never overwrite a run by accident)."""
    import json

    ckpt = out / "checkpoint.pt"
    if resume:
        if not ckpt.is_file() and not previous_checkpoint(ckpt).is_file():
            raise UsageError(f"{ckpt}: nothing to resume")
        try:
            return config_cls.from_dict(json.loads((out / "config.json").read_text()))
        except (OSError, ValueError) as e:
            raise UsageError(f"{out / 'config.json'}: unreadable run config ({e})") from None
    if ckpt.exists():
        raise UsageError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
    return preset()

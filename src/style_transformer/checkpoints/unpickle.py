"""Safe reading of NVIDIA StyleGAN2-ADA-PyTorch / StyleGAN3 snapshot pickles (``network-snapshot-*.pkl``);
``checkpoints.nvidia`` converts what it reads into this package's models.

NVIDIA's own loader executes the Python source stored in the pickle (``module_src``) to rebuild its
classes. This reader never does: a restricted unpickler rebuilds every persistent object as a plain
record of its parameters, buffers, children and attributes, and refuses every global outside a short
allow-list (tensor and storage rebuilders, containers, numpy scalars and arrays, the EasyDict of the
saved constructor arguments) with one line naming it. The storage blobs inside the stream (legacy
``torch.save`` streams that torch itself would unpickle without restrictions) are parsed here too.

``read_snapshot(path)`` returns the snapshot dict with ``G``, ``D``, ``G_ema`` as ``PersistentObject``s;
``PersistentObject.state_dict()`` flattens one in ``nn.Module.state_dict()`` order.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from .official import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class UnsafePickleError(CheckpointError):
    """The pickle names a global outside the allow-list (nothing of it was run)."""


@dataclass
class PersistentObject:
    """One of NVIDIA's ``@persistent_class`` modules, rebuilt as data (its source is kept as text and
    never run)."""

    class_name: str
    version: int
    module_src: str
    parameters: Dict[str, Optional[torch.Tensor]] = field(default_factory=dict)
    buffers: Dict[str, Optional[torch.Tensor]] = field(default_factory=dict)
    non_persistent: set = field(default_factory=set)
    modules: Dict[str, Any] = field(default_factory=dict)
    attributes: Dict[str, Any] = field(default_factory=dict)
    init_args: tuple = ()
    init_kwargs: Dict[str, Any] = field(default_factory=dict)

    def state_dict(self, prefix: str = "") -> Dict[str, torch.Tensor]:
        """Own parameters, own persistent buffers (None skipped), then children, as ``nn.Module`` orders
        them."""
        out: Dict[str, torch.Tensor] = {}
        for k, v in self.parameters.items():
            if v is not None:
                out[prefix + k] = v
        for k, v in self.buffers.items():
            if v is not None and k not in self.non_persistent:
                out[prefix + k] = v
        for k, m in self.modules.items():
            if isinstance(m, PersistentObject):
                out.update(m.state_dict(f"{prefix}{k}."))
        return out

    def child(self, path: str) -> "PersistentObject":
        """The sub-module at a dotted path (``"synthesis.b4.conv1"``)."""
        obj = self
        for part in path.split("."):
            nxt = obj.modules.get(part)
            if not isinstance(nxt, PersistentObject):
                raise KeyError(path)
            obj = nxt
        return obj

    def get(self, name: str, default: Any = None) -> Any:
        """A plain attribute set in ``__init__`` (numpy scalars as Python numbers)."""
        v = self.attributes.get(name, default)
        if isinstance(v, np.generic):
            return v.item()
        return v


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (the saved constructor kwargs): a dict with attribute
    access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_STATE_KEYS = {"training"}  # besides the private (underscore) entries of nn.Module's __dict__


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise CheckpointError("a persistent object in the pickle is not a saved module (unknown layout)")
    state = meta["state"]
    obj = PersistentObject(class_name=str(meta.get("class_name")), version=int(meta.get("version", 0)),
                           module_src=str(meta.get("module_src", "")))
    obj.parameters = dict(state.get("_parameters") or {})
    obj.buffers = dict(state.get("_buffers") or {})
    obj.non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    obj.modules = dict(state.get("_modules") or {})
    obj.init_args = tuple(state.get("_init_args") or ())
    obj.init_kwargs = dict(state.get("_init_kwargs") or {})
    obj.attributes = {k: v for k, v in state.items() if k not in _STATE_KEYS and not k.startswith("_")}
    return obj


class _Storage:
    """A storage whose bytes follow later in a legacy ``torch.save`` stream."""

    def __init__(self, dtype: torch.dtype, numel: int):
        self.dtype, self.numel = dtype, numel
        self.tensor: Optional[torch.Tensor] = None


class _BlobUnpickler(pickle.Unpickler):
    """The pickles inside one storage blob: only ``torch.<X>Storage`` names are allowed."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise UnsafePickleError(f"refused global {module}.{name} inside a tensor storage blob")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] in _STORAGE_DTYPES):
            raise CheckpointError("a tensor storage blob has an unknown persistent id")
        dtype = _STORAGE_DTYPES[pid[1]]
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, int(pid[4]))
        return self.storages[key]


_MEMO_PUTS = frozenset(("PUT", "BINPUT", "LONG_BINPUT"))


def _vet_pickle(f: io.BytesIO) -> None:
    """Walks the opcodes of the pickle at ``f``'s position (without running it; the position is kept)
    and refuses what would make the unpickler allocate beyond the file: memo indices past the objects
    stored so far (the C unpickler sizes its memo table by the index) and frames longer than the rest
    of the file. Byte strings longer than the file fail the walk itself."""
    start, size = f.tell(), len(f.getbuffer())
    stored = 0
    try:
        for op, arg, pos in pickletools.genops(f):
            if op.name in _MEMO_PUTS:
                if int(arg) > stored:  # pickle writes memo indices in order, one per stored object
                    raise CheckpointError(f"the pickle's memo index {arg} at byte {pos} is out of order")
                stored += 1
            elif op.name == "MEMOIZE":
                stored += 1
            elif op.name == "FRAME" and int(arg) > size - pos:
                raise CheckpointError(f"the pickle is truncated (a frame at byte {pos} runs past the end of the file)")
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 (genops reports a malformed stream as several types)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "remain" in msg or "exhausted" in msg:  # a length or the STOP reaches past the end
            raise CheckpointError(f"the pickle is truncated (the file ends early: {msg[:120]})") from None
        raise CheckpointError(f"not a readable pickle ({msg[:200]})") from None
    finally:
        f.seek(start)


def _load_from_bytes(blob: bytes) -> torch.Tensor:
    """A storage as torch pickles it (``torch.storage._load_from_bytes``): a legacy ``torch.save``
    stream of one storage, parsed without an unrestricted unpickler. Returns a flat tensor."""
    if not isinstance(blob, (bytes, bytearray)):
        raise CheckpointError("a tensor storage in the pickle is not a byte string")
    f = io.BytesIO(blob)

    def load() -> Any:
        _vet_pickle(f)
        u = _BlobUnpickler(f)
        u.storages = storages
        return u.load()

    storages: Dict[str, _Storage] = {}
    try:
        if load() != _TORCH_LEGACY_MAGIC:
            raise CheckpointError("a tensor storage blob is not a torch.save stream (bad magic number)")
        load()  # protocol version
        info = load()
        if isinstance(info, dict) and info.get("little_endian") is False:
            raise CheckpointError("big-endian tensor storages are not supported")
        root = load()
        keys = load()
        for key in keys:
            st = storages[str(key)]
            numel = struct.unpack("<q", f.read(8))[0]
            size = torch.empty((), dtype=st.dtype).element_size()
            raw = f.read(numel * size)
            if numel != st.numel or len(raw) != numel * size:
                raise CheckpointError("a tensor storage blob is truncated")
            st.tensor = torch.frombuffer(bytearray(raw), dtype=st.dtype) if numel else torch.empty(0, dtype=st.dtype)
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, ValueError, TypeError) as e:
        raise CheckpointError(f"a tensor storage blob is malformed ({type(e).__name__})") from None
    if not isinstance(root, _Storage) or root.tensor is None:
        raise CheckpointError("a tensor storage blob holds no storage")
    return root.tensor


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, torch.Tensor):
        raise CheckpointError("a tensor in the pickle has no storage")
    return torch.as_strided(storage, tuple(size), tuple(stride), int(offset))


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor_v2, _rebuild_parameter):
        raise UnsafePickleError("refused a tensor subclass rebuilt through an unknown function")
    return func(*args)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("refused a numpy scalar of object dtype")
    return np.frombuffer(data if isinstance(data, (bytes, bytearray)) else bytes(data), dtype=dtype)[0].copy()


def _numpy_reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise UnsafePickleError("refused a numpy array subclass")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


_TENSOR_TYPE = object()  # stand-ins for torch.Tensor / Parameter passed to _rebuild_from_type_v2
_PARAMETER_TYPE = object()

_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TENSOR_TYPE,
    ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
}
_TF_MODULES = ("dnnlib.tflib", "tensorflow")


class _SnapshotUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if module.startswith(_TF_MODULES) or (module == "dnnlib" and name == "EasyDict"):
            raise CheckpointError("this is a TensorFlow-era StyleGAN pickle; convert it to PyTorch first with "
                                  "NVIDIA's own legacy.py (stylegan2-ada-pytorch or stylegan3), then load that")
        raise UnsafePickleError(f"refused to load the global {module}.{name}: not a tensor, container or "
                                "saved module (nothing was run)")

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError("the pickle uses persistent ids: it is not an NVIDIA snapshot")


def read_snapshot(path: Path) -> Dict[str, Any]:
    """The snapshot dict of an NVIDIA ``.pkl`` (``G``, ``D``, ``G_ema`` as ``PersistentObject``).

    Raises:
        CheckpointError: unreadable, truncated, unsafe (``UnsafePickleError``), TensorFlow-era, or not
            a snapshot with ``G_ema``.
    """
    path = Path(path)
    try:
        f = io.BytesIO(path.read_bytes())
        _vet_pickle(f)
        data = _SnapshotUnpickler(f).load()
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from None
    except EOFError:
        raise CheckpointError(f"{path}: the pickle is truncated (the file ends early)") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 (a corrupt pickle surfaces as any of a dozen types)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable pickle ({msg[:200]})") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), PersistentObject) for k in ("G", "D", "G_ema")):
        raise CheckpointError(f"{path}: a pickle, but not an NVIDIA network snapshot (no G / D / G_ema networks)")
    if not isinstance(data.get("G_ema"), PersistentObject):
        raise CheckpointError(f"{path}: the snapshot has no G_ema (the generator every command uses)")
    return data


def is_pickle(head: bytes) -> bool:
    """True for a plain pickle stream of protocol 2-5 that is not a legacy ``torch.save`` file."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5) and not head.startswith(b"\x80\x02\x8a\x0a")

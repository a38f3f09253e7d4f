"""The safe NVIDIA-pickle reader's parts, each on inputs built here: the storage blobs (legacy torch.save
streams), the persistent-object records, the tensor and numpy rebuilders and the opcode walk, with
every refusal's message."""

import io
import pickle
import struct

import numpy as np
import pytest
import torch

from style_transformer import CheckpointError
from style_transformer.checkpoints import unpickle as U

MAGIC = U._TORCH_LEGACY_MAGIC


class _Ref:
    """Pickled as torch pickles a storage: a persistent id ``("storage", TYPE, key, device, numel)``."""

    def __init__(self, type_name, key, numel):
        self.pid = ("storage", type_name, key, "cpu", numel)


class _BlobPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Ref) else None


def _dump(obj, protocol=2):
    buf = io.BytesIO()
    _BlobPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def _blob(values, type_name="FloatStorage", *, magic=MAGIC, little_endian=True, root=None, keys=("0",),
          numel=None, cut=0):
    """A legacy ``torch.save`` stream of one storage holding ``values`` (a 1-D numpy array)."""
    raw = values.tobytes()
    n = len(values) if numel is None else numel
    ref = _Ref(type_name, "0", len(values))
    out = (_dump(magic) + _dump(1001) + _dump({"protocol_version": 1001, "little_endian": little_endian})
           + _dump(ref if root is None else root) + _dump(list(keys)) + struct.pack("<q", n) + raw)
    return out[:len(out) - cut]


@pytest.mark.parametrize("type_name, dtype", [("FloatStorage", np.float32), ("DoubleStorage", np.float64),
                                              ("LongStorage", np.int64), ("HalfStorage", np.float16),
                                              ("ByteStorage", np.uint8)])
def test_storage_blobs_read_every_element_of_their_dtype(type_name, dtype):
    values = (np.arange(7) * 3 - 5).astype(dtype)
    t = U._load_from_bytes(_blob(values, type_name))
    assert t.dtype == U._STORAGE_DTYPES[type_name] and t.shape == (7,)
    np.testing.assert_array_equal(t.numpy(), values)
    empty = U._load_from_bytes(_blob(values[:0], type_name))
    assert empty.shape == (0,) and empty.dtype == U._STORAGE_DTYPES[type_name]
    assert U._load_from_bytes(bytearray(_blob(values, type_name))).shape == (7,)


def _refused(blob, message):
    with pytest.raises(CheckpointError) as e:
        U._load_from_bytes(blob)
    assert str(e.value) == message


def test_storage_blob_refusals_name_the_problem():
    v = np.arange(4, dtype=np.float32)
    _refused("text", "a tensor storage in the pickle is not a byte string")
    _refused(_blob(v, magic=12345), "a tensor storage blob is not a torch.save stream (bad magic number)")
    _refused(_blob(v, little_endian=False), "big-endian tensor storages are not supported")
    _refused(_blob(v, numel=3), "a tensor storage blob is truncated")  # the header disagrees with the storage
    _refused(_blob(v, cut=1), "a tensor storage blob is truncated")  # the bytes end early
    _refused(_blob(v, keys=("1",)), "a tensor storage blob is malformed (KeyError)")
    _refused(_blob(v, root=5, keys=()), "a tensor storage blob holds no storage")
    _refused(_blob(v, keys=()), "a tensor storage blob holds no storage")  # named, but its bytes never came
    bad_pid = _blob(v)
    bad_pid = bad_pid.replace(b"FloatStorage", b"EvilyStorage")
    _refused(bad_pid, "a tensor storage blob has an unknown persistent id")
    evil = _dump(MAGIC) + _dump(1001) + _dump({}) + pickle.dumps(print, protocol=4)
    with pytest.raises(U.UnsafePickleError) as e:
        U._load_from_bytes(evil)
    assert str(e.value) == "refused global builtins.print inside a tensor storage blob"


def test_storages_named_twice_are_one_storage():
    u = U._BlobUnpickler(io.BytesIO(_dump([_Ref("FloatStorage", "7", 3), _Ref("FloatStorage", "7", 3)])))
    u.storages = {}
    a, b = u.load()
    assert a is b and (a.dtype, a.numel, a.tensor) == (torch.float32, 3, None) and list(u.storages) == ["7"]
    assert u.find_class("torch", "HalfStorage") == "HalfStorage"
    for pid in (("storage", "FloatStorage", "1", "cpu"), ("tensor", "FloatStorage", "1", "cpu", 2),
                ["storage", "FloatStorage", "1", "cpu", 2]):
        with pytest.raises(CheckpointError, match="unknown persistent id"):
            u.persistent_load(pid)


def test_persistent_objects_become_records():
    state = {"_parameters": {"weight": torch.ones(2)}, "_buffers": {"noise": torch.zeros(1), "tmp": None},
             "_non_persistent_buffers_set": {"scratch"}, "_modules": {"child": None}, "_init_args": [1, 2],
             "_init_kwargs": {"w_dim": 8}, "training": True, "_private": 3, "w_dim": np.int64(8), "name": "x"}
    obj = U._reconstruct_persistent_obj({"type": "class", "class_name": "Mapping", "version": "6",
                                         "module_src": "src", "state": state})
    assert (obj.class_name, obj.version, obj.module_src) == ("Mapping", 6, "src")
    assert list(obj.parameters) == ["weight"] and list(obj.buffers) == ["noise", "tmp"]
    assert obj.non_persistent == {"scratch"} and obj.modules == {"child": None}
    assert obj.init_args == (1, 2) and obj.init_kwargs == {"w_dim": 8}
    assert obj.attributes == {"w_dim": np.int64(8), "name": "x"}  # no nn.Module bookkeeping
    assert obj.get("w_dim") == 8 and type(obj.get("w_dim")) is int and obj.get("missing", 5) == 5
    bare = U._reconstruct_persistent_obj({"type": "class", "state": {}})
    assert (bare.version, bare.module_src, bare.init_args, bare.init_kwargs, bare.non_persistent) == (0, "", (), {}, set())
    for meta in (None, {"type": "function", "state": {}}, {"type": "class", "state": None}, {"type": "class"}):
        with pytest.raises(CheckpointError) as e:
            U._reconstruct_persistent_obj(meta)
        assert str(e.value) == "a persistent object in the pickle is not a saved module (unknown layout)"


def test_records_give_state_dicts_and_children_like_modules():
    leaf = U.PersistentObject("Leaf", 1, "", parameters={"w": torch.ones(1), "gone": None},
                              buffers={"b": torch.zeros(1), "np": torch.ones(1)}, non_persistent={"np"})
    root = U.PersistentObject("Root", 1, "", parameters={"p": torch.ones(2)}, modules={"a": leaf, "n": None})
    assert list(root.state_dict()) == ["p", "a.w", "a.b"]
    assert root.child("a") is leaf
    for path in ("n", "a.x", "zz"):
        with pytest.raises(KeyError):
            root.child(path)


def test_tensors_and_numpy_values_are_rebuilt_and_others_refused():
    flat = torch.arange(12.0)
    t = U._rebuild_tensor_v2(flat, 2, (2, 3), (3, 1))
    torch.testing.assert_close(t, flat[2:8].view(2, 3))
    with pytest.raises(CheckpointError, match="^a tensor in the pickle has no storage$"):
        U._rebuild_tensor_v2(np.zeros(3), 0, (3,), (1,))
    assert U._rebuild_parameter(t) is t
    assert U._rebuild_from_type_v2(U._rebuild_tensor_v2, None, (flat, 0, (3,), (1,)), {}).shape == (3,)
    with pytest.raises(U.UnsafePickleError, match="unknown function"):
        U._rebuild_from_type_v2(print, None, (), {})
    value = U._numpy_scalar(np.dtype("float64"), np.float64(2.5).tobytes())
    assert value == 2.5 and isinstance(value, np.float64)
    assert U._numpy_scalar(np.dtype("int32"), bytearray(np.int32(-3).tobytes())) == -3
    assert U._numpy_scalar(np.dtype("uint8"), [7]) == 7  # a sequence of byte values
    for dtype in (np.dtype(object), "float64"):
        with pytest.raises(U.UnsafePickleError, match="object dtype"):
            U._numpy_scalar(dtype, b"\0" * 8)
    arr = U._numpy_reconstruct(np.ndarray, (0,), b"b")
    assert type(arr) is np.ndarray and arr.shape == (0,)
    with pytest.raises(U.UnsafePickleError, match="array subclass"):
        U._numpy_reconstruct(np.matrix, (0,), b"b")


def test_the_opcode_walk_refuses_what_would_allocate_past_the_file():
    ok = pickle.dumps([1, 2, {"a": 3}], protocol=4)
    f = io.BytesIO(b"xx" + ok)
    f.seek(2)
    U._vet_pickle(f)
    assert f.tell() == 2  # the position is kept
    # a memo index ahead of the objects stored so far (LONG_BINPUT 2^31)
    evil = b"\x80\x02]r\x00\x00\x00\x80."
    with pytest.raises(CheckpointError) as e:
        U._vet_pickle(io.BytesIO(evil))
    assert str(e.value) == "the pickle's memo index 2147483648 at byte 3 is out of order"
    # in order is fine: BINPUT 0 then 1
    U._vet_pickle(io.BytesIO(b"\x80\x02]q\x00]q\x01\x86."))
    # a frame longer than the rest of the file
    framed = b"\x80\x04\x95" + struct.pack("<Q", 10 ** 6) + b"N."
    with pytest.raises(CheckpointError) as e:
        U._vet_pickle(io.BytesIO(framed))
    assert str(e.value) == "the pickle is truncated (a frame at byte 2 runs past the end of the file)"
    with pytest.raises(CheckpointError) as e:
        U._vet_pickle(io.BytesIO(ok[:-1]))  # no STOP
    assert str(e.value).startswith("the pickle is truncated (the file ends early: ")
    with pytest.raises(CheckpointError) as e:
        U._vet_pickle(io.BytesIO(b"\x80\x02\xff."))
    assert str(e.value).startswith("not a readable pickle (at position 2, opcode b'\\xff' unknown")


def test_tensorflow_pickles_and_persistent_ids_are_named(tmp_path):
    u = U._SnapshotUnpickler(io.BytesIO(b"."))
    for module, name in (("dnnlib.tflib.network", "Network"), ("tensorflow", "Variable"), ("dnnlib", "EasyDict")):
        with pytest.raises(CheckpointError, match="^this is a TensorFlow-era StyleGAN pickle; convert it"):
            u.find_class(module, name)
    assert u.find_class("dnnlib.util", "EasyDict") is U.EasyDict
    with pytest.raises(U.UnsafePickleError) as e:
        u.find_class("os", "system")
    assert str(e.value) == ("refused to load the global os.system: not a tensor, container or saved module "
                            "(nothing was run)")
    path = tmp_path / "p.pkl"
    path.write_bytes(_dump({"G_ema": _Ref("FloatStorage", "0", 1)}))
    with pytest.raises(CheckpointError) as e:
        U.read_snapshot(path)
    assert str(e.value) == f"{path}: the pickle uses persistent ids: it is not an NVIDIA snapshot"
    d = U.EasyDict(a=1)
    assert d.a == 1
    with pytest.raises(AttributeError):
        d.b


def test_the_opcode_walk_counts_every_stored_object_and_frames_to_the_byte():
    def refused(stream, message):
        with pytest.raises(CheckpointError) as e:
            U._vet_pickle(io.BytesIO(stream))
        assert str(e.value) == message

    refused(b"\x80\x02]q\x01.", "the pickle's memo index 1 at byte 3 is out of order")  # the first must be 0
    # protocol 4 stores with MEMOIZE (no index): two lists memoised, then BINPUT 2 is next in order
    U._vet_pickle(io.BytesIO(b"\x80\x04]\x94]\x94]q\x02\x87."))
    refused(b"\x80\x04]\x94]\x94]q\x03\x87.", "the pickle's memo index 3 at byte 7 is out of order")
    refused(b"\x80\x04]\x94]q\x02]\x87.", "the pickle's memo index 2 at byte 5 is out of order")
    # a frame may run exactly to the end of the file (counted from the FRAME opcode), not one byte more
    U._vet_pickle(io.BytesIO(b"\x80\x04\x95" + struct.pack("<Q", 11) + b"N."))
    refused(b"\x80\x04\x95" + struct.pack("<Q", 12) + b"N.",
            "the pickle is truncated (a frame at byte 2 runs past the end of the file)")
    # a length that reaches past the end: the walk's own words
    refused(b"\x80\x02X\x10\x00\x00\x00abc", "the pickle is truncated (the file ends early: expected 16 bytes in "
                                            "a unicodestring4, but only 3 remain)")


def test_pickle_heads_and_snapshot_refusals(tmp_path):
    for head, want in ((b"\x80\x02", True), (b"\x80\x03}q", True), (b"\x80\x04\x95", True), (b"\x80\x05\x95", True),
                       (b"\x80\x01", False), (b"\x80\x06", False), (b"\x80", False), (b"\x81\x02", False),
                       (b"\x00\x02", False), (b"PK\x03\x04", False),
                       (b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8", False)):  # legacy torch.save
        assert U.is_pickle(head) is want, head
    d = tmp_path / "folder.pkl"
    d.mkdir()
    with pytest.raises(CheckpointError) as e:
        U.read_snapshot(d)
    assert str(e.value) == f"{d}: cannot read (Is a directory)"
    p = tmp_path / "x.pkl"
    p.write_bytes(b"\x80\x02h\x05.")  # a well-formed stream that fetches a memo entry never stored
    with pytest.raises(CheckpointError) as e:
        U.read_snapshot(p)
    assert str(e.value).startswith(f"{p}: not a readable pickle (") and "\n" not in str(e.value)
    p.write_bytes(pickle.dumps({"G": 1, "D": 2}))
    with pytest.raises(CheckpointError) as e:
        U.read_snapshot(p)
    assert str(e.value) == f"{p}: a pickle, but not an NVIDIA network snapshot (no G / D / G_ema networks)"
    u = U._SnapshotUnpickler(io.BytesIO(b"."))
    with pytest.raises(U.UnsafePickleError):  # only dnnlib's own EasyDict is TensorFlow-era
        u.find_class("evil", "EasyDict")
    with pytest.raises(CheckpointError) as e:
        u.find_class("dnnlib.tflib", "Network")
    assert str(e.value) == ("this is a TensorFlow-era StyleGAN pickle; convert it to PyTorch first with NVIDIA's "
                            "own legacy.py (stylegan2-ada-pytorch or stylegan3), then load that")


def test_refusal_messages_and_lookups_name_their_subject():
    b = U._BlobUnpickler(io.BytesIO(b"."))
    for module, name in (("torch", "Tensor"), ("os", "FloatStorage")):
        with pytest.raises(U.UnsafePickleError) as e:
            b.find_class(module, name)
        assert str(e.value) == f"refused global {module}.{name} inside a tensor storage blob"
    with pytest.raises(U.UnsafePickleError) as e:
        U._rebuild_from_type_v2(print, None, (), {})
    assert str(e.value) == "refused a tensor subclass rebuilt through an unknown function"
    with pytest.raises(U.UnsafePickleError) as e:
        U._numpy_scalar(np.dtype(object), b"")
    assert str(e.value) == "refused a numpy scalar of object dtype"
    with pytest.raises(U.UnsafePickleError) as e:
        U._numpy_reconstruct(np.matrix, (0,), b"b")
    assert str(e.value) == "refused a numpy array subclass"
    root = U.PersistentObject("Root", 1, "")
    with pytest.raises(KeyError) as e:
        root.child("a.b")
    assert e.value.args == ("a.b",)
    with pytest.raises(AttributeError) as e:
        U.EasyDict().missing
    assert e.value.args == ("missing",)
    # memo indices count one per stored object: 0 then 2 skips one
    with pytest.raises(CheckpointError, match="memo index 2 at byte 6 is out of order"):
        U._vet_pickle(io.BytesIO(b"\x80\x02]q\x00]q\x02\x86."))
    # a storage's bytes are read to its length: whatever follows is not part of it
    v = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(U._load_from_bytes(_blob(v) + b"trailing").numpy(), v)

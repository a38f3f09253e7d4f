"""Graph replay bookkeeping (CPU: a stand-in graph object), its fallback, and the pipeline's op choice."""

import logging

import pytest
import torch

from style_transformer import accel
from style_transformer.accel import GraphedForward, default_ops


class _RecordedGraph:
    """Stands in for ``torch.cuda.CUDAGraph``: a replay recomputes into the static output in place."""

    def __init__(self, fn, static_in, static_out):
        self.fn, self.static_in, self.static_out, self.replays = fn, static_in, static_out, 0

    def replay(self):
        self.replays += 1
        self.static_out.copy_(self.fn(self.static_in))


class _CPUGraphed(GraphedForward):
    """``GraphedForward`` that records on the CPU with ``_RecordedGraph``."""

    captures = 0

    @staticmethod
    def _graphable(x):
        return True

    def _capture(self, x):
        type(self).captures += 1
        static_in = x.clone()
        static_out = self.fn(static_in)
        return _RecordedGraph(self.fn, static_in, static_out), static_in, static_out


def _fn(x):
    return torch.tanh(x * 2 + 1).sum(1)


def test_replays_per_shape_and_never_hands_out_its_buffers():
    _CPUGraphed.captures = 0
    f = _CPUGraphed(_fn)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    ya = f(a)
    yb = f(b)  # same shape: replayed, not recorded again
    assert _CPUGraphed.captures == 1
    torch.testing.assert_close(ya, _fn(a), rtol=0, atol=0)  # the first answer was not overwritten
    torch.testing.assert_close(yb, _fn(b), rtol=0, atol=0)
    f(torch.randn(2, 3))  # a new shape: a graph of its own
    assert _CPUGraphed.captures == 2 and len(f._graphs) == 2
    ya[:] = 0  # the caller may write to what it got
    torch.testing.assert_close(f(a), _fn(a), rtol=0, atol=0)


def test_shapes_beyond_the_limit_run_eagerly(monkeypatch):
    monkeypatch.setattr(accel, "MAX_GRAPHS", 2)
    _CPUGraphed.captures = 0
    f = _CPUGraphed(_fn)
    for n in (1, 2, 3, 4):
        x = torch.randn(n, 3)
        torch.testing.assert_close(f(x), _fn(x), rtol=0, atol=0)
    assert _CPUGraphed.captures == 2 and len(f._graphs) == 2


def test_a_failed_recording_falls_back_to_eager_once_and_for_good(caplog):
    calls = []

    class _Failing(_CPUGraphed):
        def _capture(self, x):
            calls.append(x.shape)
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    f = _Failing(_fn, name="encoder")
    x = torch.randn(4, 3)
    with caplog.at_level(logging.WARNING, logger="style_transformer.accel"):
        torch.testing.assert_close(f(x), _fn(x), rtol=0, atol=0)
        y = torch.randn(5, 3)
        torch.testing.assert_close(f(y), _fn(y), rtol=0, atol=0)  # another shape after the failure: eager
    assert len(calls) == 1  # not retried
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "CUDA graph of the encoder not recorded" in warnings[0]
    assert "more detail" not in warnings[0]  # one line
    f.reset()
    f(x)
    assert len(calls) == 2  # reset tries again


def test_disabled_and_cpu_inputs_run_eagerly():
    seen = []

    def fn(x):
        seen.append(x)
        return x + 1

    x = torch.randn(3)
    assert torch.equal(GraphedForward(fn)(x), x + 1) and seen[-1] is x  # CPU tensor: the eager call itself
    g = _CPUGraphed(fn, enabled=False)
    g(x)
    assert seen[-1] is x and not g._graphs


def test_default_ops_per_device():
    assert default_ops(torch.device("cpu")) is None
    assert default_ops(torch.device("cuda")) == "ref"


def test_pipeline_ops_choice(tiny_checkpoint):
    from style_transformer import load_pipeline

    def impls(pipe):
        return {m.impl for m in list(pipe.model.modules()) + list(pipe.generator.modules()) if hasattr(m, "impl")}

    assert impls(load_pipeline(tiny_checkpoint, device="cpu")) == {"fast"}
    ref = load_pipeline(tiny_checkpoint, device="cpu", ops="ref")
    assert impls(ref) == {"ref"}
    fast = load_pipeline(tiny_checkpoint, device="cpu", ops="fast", cuda_graphs=False)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    a, b = fast.invert(list(x)), ref.invert(list(x))
    torch.testing.assert_close(a.ws, b.ws, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a.images, b.images, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="ops must be"):
        load_pipeline(tiny_checkpoint, device="cpu", ops="cuda")


@pytest.mark.gpu
def test_graphed_pipeline_matches_eager_on_cuda(tiny_checkpoint):
    from style_transformer import load_pipeline

    eager = load_pipeline(tiny_checkpoint, device="cuda", cuda_graphs=False)
    graphed = load_pipeline(tiny_checkpoint, device="cuda")
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for _ in range(2):  # the first call records, the second replays
        a, b = eager.invert(list(x), batch_size=4), graphed.invert(list(x), batch_size=4)
        torch.testing.assert_close(b.ws, a.ws, rtol=0, atol=1e-3)
        torch.testing.assert_close(b.images, a.images, rtol=0, atol=1e-3)
    assert graphed._encoder_forward.failure is None and len(graphed._encoder_forward._graphs) == 2  # 4 and 2
    first = graphed.generate(a.ws[:4])
    graphed.generate(torch.zeros_like(a.ws[:4]))
    torch.testing.assert_close(first, a.images[:4], rtol=0, atol=1e-3)  # not overwritten by the next replay


def test_replays_from_many_threads_get_their_own_answers():
    """The web app serves from threads: one replay at a time through the shared static buffers."""
    import threading
    import time

    class _SlowGraph(_RecordedGraph):
        def replay(self):
            seen = self.static_in.clone()
            time.sleep(0.002)  # a wide window for another thread to overwrite the input
            self.static_out.copy_(self.fn(seen))

    class _Slow(_CPUGraphed):
        def _capture(self, x):
            static_in = x.clone()
            static_out = self.fn(static_in)
            return _SlowGraph(self.fn, static_in, static_out), static_in, static_out

    f = _Slow(_fn)
    errors = []

    def worker(k):
        for j in range(10):
            x = torch.full((2, 3), float(k * 100 + j))
            if not torch.equal(f(x), _fn(x)):
                errors.append((k, j))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors

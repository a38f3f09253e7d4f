"""Video: PyAV I/O (timestamps, audio, atomic output), the temporal smoother against a float64
reference, the streamed pipeline against frame-by-frame library calls, rendered clips with ground
truth, the measures, the commands and their refusals."""

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av", reason="video is an optional extra (pip install av)")

from style_transformer import load_pipeline  # noqa: E402
from style_transformer.cli import main  # noqa: E402
from style_transformer.data.synthetic import ATTRIBUTES, animate_attributes, render_faces  # noqa: E402
from style_transformer.data.video import (VideoInfo, VideoReader, VideoWriter, read_clip_attributes,  # noqa: E402
                                          write_synth_clip, write_video)
from style_transformer.errors import InputError, UsageError  # noqa: E402
from style_transformer.metrics.video import code_change, frame_flicker, temporal_measures  # noqa: E402
from style_transformer.video import TemporalSmoother, process_video, smooth_sequence  # noqa: E402


def _reference_smooth(values, sigma, present=None):
    """The smoother's definition computed directly in float64: for each frame with a value, the
    Gaussian-weighted mean of the frames within ceil(3 sigma) that have one."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    present = np.ones(n, bool) if present is None else present
    if sigma == 0:
        return values.copy()
    r = int(np.ceil(3 * sigma))
    out = np.zeros_like(values)
    for i in range(n):
        js = [j for j in range(max(0, i - r), min(n, i + r + 1)) if present[j]]
        w = np.exp(-0.5 * ((np.array(js) - i) / sigma) ** 2)
        out[i] = np.tensordot(w, values[js], axes=1) / w.sum()
    return out


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.5, 4.0])
def test_smoother_matches_the_definition(sigma):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(23, 3, 2))
    np.testing.assert_allclose(smooth_sequence(x, sigma), _reference_smooth(x, sigma), rtol=0, atol=1e-12)


def test_smoother_streams_in_order_with_gaps_and_bounded_memory():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4))
    present = rng.random(40) > 0.25
    s = TemporalSmoother(2.0)
    got, held = [], 0
    for i in range(40):
        got += s.push(x[i] if present[i] else None, i)
        held = max(held, len(s._values))
    got += s.flush()
    assert [item for _, item in got] == list(range(40))  # every frame, in order
    assert all((v is None) == (not present[i]) for v, i in got)  # a frame without a value stays without
    ref = _reference_smooth(x, 2.0, present)
    for v, i in got:
        if v is not None:
            np.testing.assert_allclose(v, ref[i], atol=1e-12)
    assert held <= 2 * s.radius + 1  # a window, not the clip
    # a constant signal stays constant (weights renormalised at the ends), a ramp stays a ramp inside
    np.testing.assert_allclose(smooth_sequence(np.full((9, 2), 3.0), 1.0), 3.0)
    ramp = np.arange(20.0)[:, None]
    np.testing.assert_allclose(smooth_sequence(ramp, 1.0)[3:-3], ramp[3:-3], atol=1e-12)
    with pytest.raises(UsageError):
        TemporalSmoother(-1)
    with pytest.raises(UsageError):
        TemporalSmoother(float("nan"))


def test_animated_attributes_and_clip_roundtrip(tmp_path):
    a = animate_attributes(7, 31, subject=2)
    assert set(a) == set(ATTRIBUTES) and all(len(v) == 31 for v in a.values())
    assert a["Smiling"][:15].max() == 0 and a["Smiling"][15:].min() == 1  # the smile appears half-way
    assert a["yaw"][0] == pytest.approx(-0.6) and a["yaw"][-1] == pytest.approx(0.6)
    assert np.abs(np.diff(a["yaw"])).max() < 0.1 and np.all(np.diff(a["light_x"]) > 0)  # smooth motion
    for k in ("Eyeglasses", "face_width", "hair_hue"):  # the subject's own, constant
        assert np.ptp(a[k]) == 0
    with pytest.raises(ValueError):
        animate_attributes(7, 1)
    video, csv = write_synth_clip(tmp_path / "c.mp4", 12, fps=24, size=32, seed=7, subject=2, crf=0)
    back = read_clip_attributes(csv)
    truth = animate_attributes(7, 12, subject=2)
    for k in ATTRIBUTES:
        np.testing.assert_allclose(back[k], truth[k], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(back["time"], np.arange(12) / 24, atol=1e-6)
    with VideoReader(video) as r:
        assert (r.info.width, r.info.height, r.info.fps) == (32, 32, 24) and not r.info.has_audio
        frames = np.stack([f.rgb for f in r.frames()])
    want = render_faces(truth, 32)
    # crf 0 is lossless in YUV; the RGB <-> YUV 4:2:0 round trip costs a few levels
    assert frames.shape == want.shape and np.abs(frames.astype(int) - want).mean() < 4
    (tmp_path / "bad.csv").write_text("frame,time,yaw\n0,0,1\n")
    with pytest.raises(InputError, match="not a clip attribute table"):
        read_clip_attributes(tmp_path / "bad.csv")


def _clip_with_audio(path: Path, pts_ms, size=(48, 32)):
    """A variable-frame-rate H.264 clip (timestamps in ms) with an AAC tone."""
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
    vs.codec_context.time_base = Fraction(1, 1000)
    aus = out.add_stream("aac", rate=16000, layout="mono")
    for i, p in enumerate(pts_ms):
        f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 20 * i, np.uint8), format="rgb24")
        f.pts, f.time_base = p, Fraction(1, 1000)
        for pk in vs.encode(f):
            out.mux(pk)
    for pk in vs.encode(None):
        out.mux(pk)
    n = int(16000 * (pts_ms[-1] + 100) / 1000)
    tone = (0.3 * np.sin(np.arange(n) * 2 * np.pi * 440 / 16000)).astype(np.float32)[None]
    af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
    af.sample_rate, af.pts = 16000, 0
    for pk in aus.encode(af):
        out.mux(pk)
    for pk in aus.encode(None):
        out.mux(pk)
    out.close()


def _times_and_audio(path: Path):
    with VideoReader(path) as r:
        times = [f.time for f in r.frames()]
        audio = sum(1 for _ in r.audio_packets)
        return times, audio, r.info


def test_variable_frame_rate_and_audio_survive_a_run(tmp_path, tiny_checkpoint):
    pts = [0, 33, 66, 150, 183, 400, 433, 466]
    _clip_with_audio(tmp_path / "in.mp4", pts)
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    run = process_video(pipe, tmp_path / "in.mp4", tmp_path / "out.mp4", batch_size=3)
    t_in, a_in, info_in = _times_and_audio(tmp_path / "in.mp4")
    t_out, a_out, info_out = _times_and_audio(tmp_path / "out.mp4")
    assert run.frames == run.faces == len(pts)
    np.testing.assert_allclose(t_out, t_in, atol=1e-3)  # the gaps of a variable frame rate are kept
    np.testing.assert_allclose(t_in, np.array(pts) / 1000, atol=1e-3)
    assert info_out.has_audio and a_out == a_in > 0  # every audio packet copied
    assert (info_out.width, info_out.height) == (48, 32)  # the input's size, not the model's


def test_odd_size_and_interrupted_writer_leave_nothing_behind(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 17, 23, 3), dtype=np.uint8)
    write_video(tmp_path / "odd.mp4", frames, fps=10)
    with VideoReader(tmp_path / "odd.mp4") as r:
        assert (r.info.width, r.info.height) == (23, 17) and len(list(r.frames())) == 5
    info = VideoInfo(23, 17, Fraction(10), Fraction(1, 10), 0, 0.0, False, "h264")
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "cut.mp4", info) as w:
            w.write(frames[0], 0)
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    return write_synth_clip(d / "clip.mp4", 20, fps=30, size=32, seed=7000, subject=1)[0]


def test_pipeline_codes_match_the_library_frame_by_frame(tmp_path, clip, tiny_checkpoint, tiny_editing):
    """Per-frame codes are the encoder's on each decoded frame; smoothed codes are the smoother's
    definition applied to them; an edit is the editing models' on every frame; batch size changes
    nothing."""
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu", editing=tiny_editing / "editing")
    with VideoReader(clip) as r:
        frames = [f.rgb for f in r.frames()]
    raw = pipe.encode(frames).numpy()[:, : pipe.generator.num_ws]
    process_video(pipe, clip, tmp_path / "a.mp4", smooth=0, latents=tmp_path / "a.npz", batch_size=7, crf=0)
    a = np.load(tmp_path / "a.npz")
    assert a["wplus"].shape == raw.shape and a["face"].all() and list(a["pts"]) == sorted(a["pts"])
    np.testing.assert_allclose(a["wplus"], raw, atol=1e-5)
    for bs in (4, 32):
        process_video(pipe, clip, tmp_path / f"s{bs}.mp4", smooth=1.5, latents=tmp_path / f"s{bs}.npz", batch_size=bs)
    s4, s32 = np.load(tmp_path / "s4.npz")["wplus"], np.load(tmp_path / "s32.npz")["wplus"]
    np.testing.assert_allclose(s4, _reference_smooth(raw, 1.5), atol=1e-5)
    np.testing.assert_allclose(s4, s32, atol=1e-6)
    process_video(pipe, clip, tmp_path / "e.mp4", attribute="Smiling", strength=2.0, smooth=0,
                  latents=tmp_path / "e.npz")
    edited = pipe.edit_ws(torch.from_numpy(raw), "Smiling", strength=2.0).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "e.npz")["wplus"], edited[:, : raw.shape[1]], atol=1e-4)
    # the written video is the render of the codes at the frame's size (crf 0: lossless luma; the
    # 4:2:0 chroma of the tiny model's noisy renders is not compared)
    from PIL import Image

    from style_transformer.data.images import to_uint8

    with VideoReader(tmp_path / "a.mp4") as r:
        out = np.stack([f.rgb for f in r.frames()]).astype(float)
    want = np.stack([np.asarray(Image.fromarray(w).resize(out.shape[1:3][::-1], Image.LANCZOS))
                     for w in to_uint8(pipe.generate(torch.from_numpy(raw)))]).astype(float)
    luma = np.array([0.299, 0.587, 0.114])
    assert np.abs(out @ luma - want @ luma).mean() < 3


def test_ctrl_c_leaves_no_output(tmp_path, clip, tiny_checkpoint, monkeypatch):
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    calls = {"n": 0}
    real = pipe.generate

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pipe, "generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process_video(pipe, clip, tmp_path / "o.mp4", latents=tmp_path / "o.npz", batch_size=4)
    assert list(tmp_path.iterdir()) == []


def test_measures_against_their_closed_forms():
    true = torch.zeros(4, 3, 2, 2)
    true[1:] += 0.5  # one step of 0.5 between frames 0 and 1
    out = true.clone()
    out[2] += 0.2  # a flicker on frame 2: two extra changes of 0.2
    m = temporal_measures(out, true)
    assert m["true_change"] == pytest.approx(0.5 / 3)
    assert m["change"] == pytest.approx((0.5 + 0.2 + 0.2) / 3)
    assert m["jitter"] == pytest.approx(0.4 / 3)
    # flicker: |x_t - (x_{t-1} + x_{t+1}) / 2| over frames 1 and 2 (2x2 frames pool to one value)
    assert m["true_flicker"] == pytest.approx((0.25 + 0.0) / 2)
    assert m["flicker"] == pytest.approx((abs(0.5 - 0.35) + abs(0.7 - 0.5)) / 2)
    assert temporal_measures(out, true, pool=1)["flicker"] == pytest.approx(0.175)


def test_flicker_ignores_steady_motion_and_pools_blocks():
    t = torch.arange(6, dtype=torch.float64).view(6, 1, 1, 1)
    ramp = (0.1 * t).expand(6, 3, 4, 4).clone()  # every pixel moving at constant speed
    assert frame_flicker(ramp) == pytest.approx(0.0, abs=1e-12)
    assert frame_flicker(ramp[:2]) == 0.0  # fewer than 3 frames: nothing to measure
    toggling = ramp.clone()
    toggling[3, :, 0, 0] += 0.4  # one pixel in sixteen toggles on frame 3
    # frames 2, 3, 4 see 0.2, 0.4, 0.2 at that pixel (over 4 measured frames and 16 pixels)
    assert frame_flicker(toggling, pool=1) == pytest.approx((0.2 + 0.4 + 0.2) / 4 / 16)
    assert frame_flicker(toggling) == pytest.approx((0.2 + 0.4 + 0.2) / 4 / 16)  # the block's mean moves as much
    toggling[3, :, 0, 1] -= 0.4  # a neighbour toggles the other way: the block's mean stays on its ramp
    assert frame_flicker(toggling, pool=1) == pytest.approx(2 * (0.2 + 0.4 + 0.2) / 4 / 16)
    assert frame_flicker(toggling) == pytest.approx(0.0, abs=1e-12)
    blink = ramp.clone()
    blink[3] += 0.4  # the whole frame brightens for one frame: pooling keeps all of it
    assert frame_flicker(blink) == pytest.approx((0.2 + 0.4 + 0.2) / 4)
    odd = torch.zeros(3, 1, 5, 5, dtype=torch.float64)
    odd[1] = 1.0
    assert frame_flicker(odd) == pytest.approx(1.0)  # a side not divisible by the block still averages whole
    ws = np.zeros((3, 2, 4))
    ws[1, :, 0] = 3.0
    ws[2, :, 0] = 3.0
    ws[2, :, 1] = 4.0
    assert code_change(ws) == pytest.approx((3.0 + 4.0) / 2)


def test_commands_and_refusals(tmp_path, capsys, tiny_checkpoint, tiny_editing, monkeypatch):
    clip = tmp_path / "c.mp4"
    assert main(["dataset", "synth-video", "--out", str(clip), "--frames", "12", "--size", "32", "--seed", "3"]) == 0
    assert (tmp_path / "c.csv").is_file()
    ck = ["--checkpoint", str(tiny_checkpoint)]
    assert main(["invert-video", str(clip), "--out", str(tmp_path / "r.mp4"), *ck]) == 0
    assert np.load(tmp_path / "r.npz")["wplus"].shape[0] == 12
    assert main(["edit-video", str(clip), "--attribute", "Smiling", "--strength", "2", "--out", str(tmp_path / "e.mp4"),
                 "--editing", str(tiny_editing / "editing"), "--no-smooth", *ck]) == 0
    assert main(["eval-video", str(clip), "--json", str(tmp_path / "ev.json"), *ck]) == 0
    out = capsys.readouterr().out
    assert "| jitter |" in out and "per-frame" in out and (tmp_path / "ev.json").is_file()
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    cases = [
        (["invert-video", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "x.mp4")], "no such file"),
        (["invert-video", str(tmp_path / "junk.mp4"), "--out", str(tmp_path / "x.mp4")], "not a readable video"),
        (["invert-video", str(clip), "--out", str(tmp_path / "x.avi")], "write the video as .mp4"),
        (["invert-video", str(clip), "--out", str(tmp_path / "x.mp4"), "--smooth", "-1"], "--smooth must be"),
        (["edit-video", str(clip), "--attribute", "Nope", "--strength", "1", "--out", str(tmp_path / "x.mp4"),
          "--editing", str(tiny_editing / "editing"), *ck], "Nope"),
        (["dataset", "synth-video", "--out", str(tmp_path / "x.avi")], "as .mp4"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "x.mp4").exists() and not list(tmp_path.glob(".x*"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    assert main(["invert-video", str(clip), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "pip install 'style-transformer[video]'" in capsys.readouterr().err


dlib = importlib.util.find_spec("dlib")


@pytest.mark.skipif(dlib is None or importlib.util.find_spec("skimage") is None,
                    reason="alignment needs dlib and scikit-image's photographs")
def test_aligned_video_pastes_back_and_keeps_faceless_frames(tmp_path, tiny_checkpoint):
    from PIL import Image

    spec = importlib.util.find_spec("skimage")
    photo = Image.open(Path(list(spec.submodule_search_locations)[0]) / "data" / "astronaut.png").convert("RGB")
    photo = np.asarray(photo.resize((256, 256)))
    frames = [np.roll(photo, 2 * i, axis=1) for i in range(6)]
    frames[3] = np.full_like(photo, 128)  # a frame without a face
    write_video(tmp_path / "a.mp4", np.stack(frames), fps=10, crf=0)
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    run = process_video(pipe, tmp_path / "a.mp4", tmp_path / "o.mp4", align=True, latents=tmp_path / "o.npz")
    assert (run.frames, run.faces) == (6, 5)
    z = np.load(tmp_path / "o.npz")
    assert list(z["face"]) == [True, True, True, False, True, True]
    with VideoReader(tmp_path / "o.mp4") as r:
        out = np.stack([f.rgb for f in r.frames()]).astype(int)
    assert np.abs(out[3] - 128).mean() < 2  # the faceless frame is written as it is
    corner = (slice(0, 20), slice(0, 20))  # far from the face: the photo, not the render
    assert np.abs(out[0][corner] - frames[0][corner]).mean() < 6


def test_demo_video_page_and_pipeline_methods(tmp_path):
    """``demo --video``: a held-out clip, its reconstruction, an edit and the side-by-side MP4, shown in
    the page; the pipeline's own ``invert_video`` method gives the codes the demo wrote."""
    from style_transformer.demo import VIDEO_FRAMES, run_demo

    res = run_demo(tmp_path / "d", n=2, video=True)
    v = tmp_path / "d" / "video"
    assert res.video == v / "side_by_side.mp4"
    for name in ("clip.mp4", "clip.csv", "reconstruction.mp4", "edited.mp4", "side_by_side.mp4", "latents.npz"):
        assert (v / name).is_file(), name
    with VideoReader(v / "side_by_side.mp4") as r:
        assert (r.info.width, r.info.height) == (3 * 64 * 4, 64 * 4) and len(list(r.frames())) == VIDEO_FRAMES
    page = (tmp_path / "d" / "index.html").read_text()
    assert '<video src="video/side_by_side.mp4"' in page and "Eyeglasses" in page
    pipe = load_pipeline()
    pipe.invert_video(v / "clip.mp4", tmp_path / "again.mp4", latents=tmp_path / "again.npz")
    np.testing.assert_allclose(np.load(tmp_path / "again.npz")["wplus"], np.load(v / "latents.npz")["wplus"], atol=1e-5)


def test_corrupt_middle_is_one_error_and_no_output(tmp_path, tiny_checkpoint):
    frames = render_faces(animate_attributes(1, 60), 32)
    write_video(tmp_path / "ok.mp4", frames, fps=30)
    data = bytearray((tmp_path / "ok.mp4").read_bytes())
    rng = np.random.default_rng(0)
    start = len(data) // 3
    data[start: start + 1500] = rng.integers(0, 256, 1500, dtype=np.uint8).tobytes()
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    with pytest.raises(InputError, match="corrupt or truncated"):
        process_video(pipe, tmp_path / "bad.mp4", tmp_path / "o.mp4", latents=tmp_path / "o.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "ok.mp4"]


@pytest.mark.slow  # load: a long clip streamed
def test_memory_stays_flat_on_a_long_clip(tmp_path, tiny_checkpoint):
    """Frames are streamed: ten times the clip holds about the same pixels at its peak."""
    import tracemalloc

    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    peaks = {}
    for n in (40, 400):
        write_video(tmp_path / f"c{n}.mp4", np.repeat(render_faces(animate_attributes(2, 8), 64), n // 8, axis=0), fps=30)
        tracemalloc.start()
        process_video(pipe, tmp_path / f"c{n}.mp4", tmp_path / f"o{n}.mp4", batch_size=8)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    held_all = 400 * 64 * 64 * 3  # what holding every decoded frame would take
    assert peaks[400] - peaks[40] < held_all / 4, peaks


def test_eval_video_bookkeeping_against_direct_computations(tmp_path, monkeypatch):
    """``evaluate_video`` with a stand-in for the video pipeline that hands over known frames and codes:
    the per-frame run the truth with a known flicker added, the smoothed run the truth itself; every
    measure is recomputed here from those frames in float64."""
    import style_transformer.video as video_mod
    from style_transformer.data.video import write_synth_clip
    from style_transformer.metrics.video import evaluate_video
    from style_transformer.video import VideoRun

    n = 10
    clip, csv = write_synth_clip(tmp_path / "c.mp4", n_frames=n, size=32, seed=5)
    attrs = read_clip_attributes(csv)
    factors = {k: v for k, v in attrs.items() if k not in ("frame", "time")}
    true = render_faces(factors, 32)
    smiling = render_faces(dict(factors, Smiling=np.ones(n)), 32)
    bump = np.zeros((n, 1, 1, 1), np.int16)
    bump[3] = bump[6] = 8  # two frames 8 levels brighter in the per-frame run
    codes = {0.0: np.random.default_rng(0).normal(size=(n, 2, 4)), 1.5: np.cumsum(np.ones((n, 2, 4)), 0)}

    def fake(pipe, src, out, attribute=None, strength=None, smooth=1.5, batch_size=32, latents=None,
             progress=False, on_frame=None, **kw):
        frames = smiling if attribute else true
        if smooth == 0:
            frames = np.clip(frames.astype(np.int16) + bump, 0, 255).astype(np.uint8)
        for f in frames:
            on_frame(f)
        if latents is not None:
            np.savez(latents, wplus=codes[smooth])
        return VideoRun(out=Path(out), latents=Path(latents) if latents else None, frames=n, faces=n, seconds=4.0)

    class Classifier:
        attributes = ["Smiling", "Bangs"]
        calls = 0

        def predict(self, y):
            Classifier.calls += 1
            p = torch.zeros(len(y), 2)
            p[:, 0] = 0.9
            if Classifier.calls == 1:  # the per-frame run: the edit missing on frames 2 and 7
                p[[2, 7], 0] = 0.2
            else:  # smoothed: missing on frame 7 only
                p[7, 0] = 0.4
            p[:, 1] = torch.from_numpy(attrs["Bangs"]).float() if Classifier.calls == 1 else 0.0
            return p

    monkeypatch.setattr(video_mod, "process_video", fake)
    l1 = lambda a, b: (a - b).abs().mean((1, 2, 3))  # noqa: E731 (a stand-in perceptual distance)
    rep = evaluate_video(object(), clip, smooth=1.5, attribute="Smiling", strength=2.0, classifier=Classifier(),
                         lpips=l1)
    x = lambda u8: u8.astype(np.float64) / 127.5 - 1  # noqa: E731
    per = x(np.clip(true.astype(np.int16) + bump, 0, 255).astype(np.uint8))
    t = x(true)

    def change(c):
        return np.abs(np.diff(c, axis=0)).mean()

    def flicker(c):
        c = c.reshape(n, 8, 4, 8, 4, 3).mean((2, 4))  # 4x4 blocks
        return np.abs(c[1:-1] - (c[2:] + c[:-2]) / 2).mean()

    pf, sm = rep.runs["per-frame"], rep.runs["smoothed"]
    mse = ((per - t) ** 2).mean((1, 2, 3))
    assert pf["psnr"] == pytest.approx(np.mean(10 * np.log10(4 / np.maximum(mse, 1e-12))), rel=1e-5)
    assert pf["lpips"] == pytest.approx(np.abs(per - t).mean(), rel=1e-5) and sm["lpips"] == 0.0
    assert pf["change"] == pytest.approx(change(per), rel=1e-5)
    assert pf["true_change"] == sm["true_change"] == pytest.approx(change(t), rel=1e-5)
    assert pf["jitter"] == pytest.approx(change(per) - change(t), rel=1e-4) and abs(sm["jitter"]) < 1e-7
    assert pf["flicker"] == pytest.approx(flicker(per), rel=1e-5)
    assert sm["flicker"] == pytest.approx(sm["true_flicker"]) == pytest.approx(flicker(t), rel=1e-5)
    assert pf["w_change"] == pytest.approx(np.linalg.norm(np.diff(codes[0.0], axis=0), axis=-1).mean())
    assert sm["w_change"] == pytest.approx(2.0)  # every entry +1 per frame: |(1, 1, 1, 1)| per row
    assert pf["fps"] == sm["fps"] == pytest.approx(n / 4.0)
    s = x(smiling)
    assert pf["edit_present"] == pytest.approx(0.8) and sm["edit_present"] == pytest.approx(0.9)
    assert pf["edit_switches"] == 4 and sm["edit_switches"] == 2
    assert pf["edit_kept"] == 1.0 and sm["edit_kept"] == pytest.approx(1.0)  # frame 7 failed per frame too
    assert pf["edit_true_change"] == sm["edit_true_change"] == pytest.approx(change(s), rel=1e-5)
    assert sm["edit_change"] == pytest.approx(change(s), rel=1e-5) and abs(sm["edit_jitter"]) < 1e-7
    assert pf["edit_flicker"] == pytest.approx(flicker(x(np.clip(smiling.astype(np.int16) + bump, 0, 255))), rel=1e-5)
    assert sm["edit_true_flicker"] == pytest.approx(flicker(s), rel=1e-5)
    bangs = attrs["Bangs"] > 0.5
    assert pf["preserved"] == 1.0 and sm["preserved"] == pytest.approx(float((~bangs).mean()))
    assert (rep.frames, rep.smooth, rep.attribute, rep.strength) == (n, 1.5, "Smiling", 2.0)
    text = rep.format()
    assert f"{clip}: {n} frames; smoothed = Gaussian of sigma 1.5 frames; edit Smiling +2" in text
    assert "| measure | per-frame | smoothed |" in text and "| edit_flicker |" in text
    reduction = 100 * (1 - sm["jitter"] / pf["jitter"])
    assert f"jitter reduced by {reduction:.1f}% at a PSNR change of {sm['psnr'] - pf['psnr']:+.3f} dB" in text
    back = json.loads(rep.to_json())
    assert back["runs"]["smoothed"]["edit_present"] == sm["edit_present"] and back["strength"] == 2.0
    # refusals, before any run
    for kwargs, message in ((dict(strength=1.0), "--strength needs --attribute"),
                            (dict(attribute="Smiling"), "measuring an edit needs the image attribute classifier"),
                            (dict(attribute="Eyeglasses", classifier=Classifier()),
                             "the classifier does not judge 'Eyeglasses'; it knows Smiling, Bangs")):
        with pytest.raises(Exception) as e:
            evaluate_video(object(), clip, lpips=l1, **kwargs)
        assert str(e.value) == message


def test_video_report_text_and_json_in_full():
    from style_transformer.metrics.video import VideoReport

    keys = ["psnr", "lpips", "jitter", "change", "true_change", "w_change", "edit_present", "edit_kept",
            "edit_switches", "edit_change", "edit_true_change", "edit_jitter", "flicker", "true_flicker",
            "edit_flicker", "edit_true_flicker", "preserved", "fps"]
    per = {k: 0.125 * (i + 1) for i, k in enumerate(keys)}
    per.update(psnr=24.5, jitter=0.005, fps=10.0)
    smooth = dict(per, psnr=24.0, jitter=0.002, fps=9.5)
    del smooth["edit_kept"]  # a measure one run lacks: an empty cell
    rep = VideoReport(clip="c.mp4", frames=3, smooth=1.5, attribute="Smiling", strength=-2.0,
                      runs={"per-frame": per, "smoothed": smooth})
    want = """c.mp4: 3 frames; smoothed = Gaussian of sigma 1.5 frames; edit Smiling -2

| measure | per-frame | smoothed |
|---|---:|---:|
| psnr | 24.50 | 24.00 |
| lpips | 0.2500 | 0.2500 |
| jitter | 0.0050 | 0.0020 |
| change | 0.5000 | 0.5000 |
| true_change | 0.6250 | 0.6250 |
| w_change | 0.7500 | 0.7500 |
| edit_present | 0.8750 | 0.8750 |
| edit_kept | 1.0000 |  |
| edit_switches | 1.1250 | 1.1250 |
| edit_change | 1.2500 | 1.2500 |
| edit_true_change | 1.3750 | 1.3750 |
| edit_jitter | 1.5000 | 1.5000 |
| flicker | 1.6250 | 1.6250 |
| true_flicker | 1.7500 | 1.7500 |
| edit_flicker | 1.8750 | 1.8750 |
| edit_true_flicker | 2.0000 | 2.0000 |
| preserved | 2.1250 | 2.1250 |
| fps | 10.00 | 9.5000 |

jitter reduced by 60.0% at a PSNR change of -0.500 dB"""
    assert rep.format() == want
    assert rep.to_json() == json.dumps({"clip": "c.mp4", "frames": 3, "smooth": 1.5, "attribute": "Smiling",
                                        "strength": -2.0, "runs": {"per-frame": per, "smoothed": smooth}}, indent=2)
    assert rep.to_json().startswith('{\n  "clip": "c.mp4",\n  "frames": 3,\n  "smooth": 1.5,\n  "attribute"')
    calibrated = VideoReport("c.mp4", 3, 1.5, attribute="Smiling", runs={"per-frame": {"psnr": 9.99}})
    assert calibrated.format().splitlines()[0] == ("c.mp4: 3 frames; smoothed = Gaussian of sigma 1.5 frames; "
                                                   "edit Smiling (calibrated strength)")
    assert calibrated.format().splitlines()[-1] == "| psnr | 9.9900 |"  # no jitter: no reduction line
    plain = VideoReport("c.mp4", 3, 0.5, runs={"per-frame": {"jitter": 0.0}, "smoothed": {"jitter": 0.0}})
    assert plain.format() == ("c.mp4: 3 frames; smoothed = Gaussian of sigma 0.5 frames\n\n"
                              "| measure | per-frame | smoothed |\n|---|---:|---:|\n| jitter | 0.0000 | 0.0000 |")


def test_flicker_pools_by_the_given_block():
    clip = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    pooled = clip.view(5, 3, 4, 2, 4, 2).mean((3, 5))
    want = (pooled[1:-1] - (pooled[2:] + pooled[:-2]) / 2).abs().mean().item()
    assert frame_flicker(clip, pool=2) == pytest.approx(want, rel=1e-12)
    other = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    m = temporal_measures(clip, other, pool=1)
    assert m["flicker"] == pytest.approx(frame_flicker(clip, 1)) and m["true_flicker"] == pytest.approx(frame_flicker(other, 1))
    assert m["true_flicker"] != pytest.approx(frame_flicker(other, 4))

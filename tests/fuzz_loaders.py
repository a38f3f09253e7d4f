"""A seeded, bounded fuzz harness for every loader a user can point at.

Valid seed files of each format are made here (tiny models, small images, label tables); each is
mutated byte-wise (bit flips, truncations, insertions, length-field edits, splices of two files of the
same format) and handed to its loader. Every input must either load or raise the project's own error
(``StyleTransformerError``) with a one-line message, within ``TIMEOUT_S``; anything else (another
exception, a multi-line message, a hang) is a finding.

    python tests/fuzz_loaders.py --n 20000 --seed 0      # make fuzz
    python tests/fuzz_loaders.py --n 2000 --seed 1       # the short run of the test suite

Prints per-loader counts (loaded / refused / findings), the inputs per second and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

TIMEOUT_S = 2.0


class _Timeout(Exception):
    pass


@dataclass
class Target:
    """A loader and its seed files (all of one format)."""

    name: str
    suffix: str
    load: Callable[[Path], object]
    seeds: List[bytes]
    folder: Callable[[Path, bytes], Path] = None  # writes the mutated bytes into a folder; returns what to load


@dataclass
class Finding:
    target: str
    mutation: str
    error: str  # the kind of finding (exception type and where it was raised)
    data: bytes = field(repr=False, default=b"")
    message: str = ""


@dataclass
class FuzzReport:
    counts: Dict[str, Counter] = field(default_factory=dict)
    findings: List[Finding] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def table(self) -> str:
        lines = ["| loader | inputs | loaded | refused (one line) | findings |", "|---|---:|---:|---:|---:|"]
        for name, c in self.counts.items():
            lines.append(f"| {name} | {sum(c.values())} | {c['loaded']} | {c['refused']} | {c['finding']} |")
        lines.append(f"| **all** | {self.total} | {sum(c['loaded'] for c in self.counts.values())} | "
                     f"{sum(c['refused'] for c in self.counts.values())} | {len(self.findings)} |")
        return "\n".join(lines)


# -- seed files ---------------------------------------------------------------------------------------
def _image_seeds() -> List[bytes]:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8))
    out = []
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 80}), ("WEBP", {}), ("BMP", {})):
        buf = io.BytesIO()
        rgb.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 65535, (8, 9), dtype=np.uint16).astype(np.uint16)).save(buf, format="PNG")
    out.append(buf.getvalue())  # 16-bit gray
    buf = io.BytesIO()
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=8)
    pal.info["transparency"] = 0
    pal.save(buf, format="PNG", transparency=0)
    out.append(buf.getvalue())  # palette with transparency
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    rgb.save(buf, format="JPEG", exif=exif.tobytes())
    out.append(buf.getvalue())
    return out


def _npz_seeds() -> List[bytes]:
    import io

    import numpy as np

    out = []
    for arrays in ({"a": np.zeros((10, 32), np.float32), "b": np.ones((10, 32), np.float32)},
                   {"face_0": np.linspace(-1, 1, 8 * 16, dtype=np.float32).reshape(8, 16)}):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        out.append(buf.getvalue())
    return out


def _model_files(tmp: Path):
    """(safetensors seeds, .pt seeds) of tiny models."""
    import torch

    from style_transformer import GeneratorConfig, StyleTransformer, model_preset, save_model
    from style_transformer.config import AttributeClassifierConfig
    from style_transformer.models import Generator
    from style_transformer.models.classifier import AttributeClassifier

    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(size=32, style_dim=8, n_mlp=1, channels=(8, 8, 8, 8)))
    clf = AttributeClassifier(AttributeClassifierConfig(attributes=("a", "b"), size=8, channels=(4, 4)))
    st = StyleTransformer(model_preset("tiny"))
    safes = []
    for k, m in enumerate((gen, clf)):
        safes.append(save_model(m, tmp / f"m{k}.safetensors").read_bytes())
    safes.append(save_model(gen, tmp / "half.safetensors", dtype=torch.float16).read_bytes())
    pts = []
    sd = gen.state_dict()
    torch.save({"g_ema": {k: v for k, v in sd.items() if k != "latent_avg"}, "latent_avg": sd["latent_avg"]},
               tmp / "rosinality.pt")
    pts.append((tmp / "rosinality.pt").read_bytes())
    ssd = st.state_dict()
    torch.save({"state_dict": {k: v for k, v in ssd.items() if not k.endswith("latent_avg")},
                "latent_avg": ssd["decoder.latent_avg"], "opts": {"output_size": 32}}, tmp / "official.pt")
    pts.append((tmp / "official.pt").read_bytes())
    from style_transformer.config import EncoderConfig, PSPConfig
    from style_transformer.models import PSPModel

    tiny = PSPConfig(encoder=EncoderConfig(input_size=32, stem_channels=8, stage_channels=(8, 16, 24, 32),
                                           stage_units=(1, 1, 1, 1), se_reduction=4, n_styles=8, d_model=32),
                     generator=GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16)),
                     coarse_ind=2, middle_ind=5)
    for arch, encoder_type in (("psp", "GradualStyleEncoder"), ("e4e", "Encoder4Editing")):
        import dataclasses

        model = PSPModel(dataclasses.replace(tiny, arch=arch))
        sd = {k: v for k, v in model.state_dict().items() if k != "decoder.latent_avg"}
        torch.save({"state_dict": sd, "latent_avg": model.decoder.latent_avg.repeat(8, 1),
                    "opts": {"encoder_type": encoder_type}}, tmp / f"{arch}.pt")
        pts.append((tmp / f"{arch}.pt").read_bytes())
    return safes, pts


def _nvidia_seeds() -> List[bytes]:
    here = Path(__file__).parent / "data" / "nvidia"
    return [p.read_bytes() for p in sorted(here.glob("*.pkl"))]


def _label_seeds() -> List[bytes]:
    csv = "file,Smiling,Bangs,yaw\n000000.png,1,0,0.3\n000001.png,0,1,-0.2\n000002.png,1,1,0\n"
    celeba = "3\nSmiling Bangs Eyeglasses\n000001.jpg 1 -1 -1\n000002.jpg -1 1 1\n000003.jpg 1 1 -1\n"
    return [csv.encode(), celeba.encode()]


def _editing_seed(tmp: Path) -> bytes:
    """An editing folder's ``editing.json`` (the folder's other files stay valid)."""
    from style_transformer.editing.toolkit import EditingModels, settings_from_maps

    models = EditingModels(settings=settings_from_maps(
        strengths={"interfacegan": {"Smiling": 3.0}, "reference": {"Bangs": 1.5}},
        layers={"interfacegan": {"Smiling": [2, 6]}}, classifier_keep={"Smiling": 0.1},
        reference_remove={"Bangs": 0.75}))
    return models.settings_json().encode()


def _editing_folder(tmp: Path) -> Path:
    import torch

    from style_transformer.editing import Direction
    from style_transformer.editing.toolkit import EditingModels

    folder = tmp / "editing_base"
    EditingModels(directions={"Smiling": Direction("Smiling", torch.ones(1, 8) / 8 ** 0.5, "interfacegan")}).save(folder)
    return folder


# -- mutations ----------------------------------------------------------------------------------------
_HUGE = (0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 10 ** 12, 2 ** 63 - 1)


def mutate(data: bytes, other: bytes, rng: random.Random) -> (str, bytes):
    """One random byte-wise mutation of ``data`` (``other``: a second file of the format for splices)."""
    kind = rng.choice(("flip", "flip", "truncate", "insert", "length", "length", "splice", "text"))
    b = bytearray(data)
    if not b:
        return "insert", bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
    if kind == "flip":
        for _ in range(rng.choice((1, 1, 2, 4, 16))):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.getrandbits(8)
    elif kind == "truncate":
        b = b[: rng.randrange(len(b))]
    elif kind == "insert":
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 4, 64, 1024))))
    elif kind == "length":  # overwrite a 4- or 8-byte little/big-endian integer with an edge value
        width = rng.choice((4, 8))
        i = rng.randrange(max(1, len(b) - width)) if rng.random() < 0.5 else rng.randrange(min(64, len(b)))
        v = rng.choice(_HUGE) % (2 ** (8 * width))
        b[i:i + width] = v.to_bytes(width, rng.choice(("little", "big")))
    elif kind == "splice":
        i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
        b = b[:i] + bytearray(other[j:])
    else:  # text-level edits of numbers and punctuation (JSON, CSV and headers)
        text = b.decode("latin-1")
        subs = ["1e309", "-1", "NaN", "nan", "999999999999", "[]", "{}", "null", '"x"', "", ",", "\n", "0"]
        digits = [i for i, ch in enumerate(text) if ch.isdigit() or ch in ",:[]{}\n"]
        for _ in range(rng.choice((1, 2, 3))):
            if not digits:
                break
            i = rng.choice(digits)
            if i >= len(text):
                continue
            text = text[:i] + rng.choice(subs) + text[i + 1:]
        b = bytearray(text.encode("latin-1"))
    return kind, bytes(b)


# -- the run ------------------------------------------------------------------------------------------
def _on_alarm(signum, frame):
    raise _Timeout()


def build_targets(tmp: Path) -> List[Target]:
    from style_transformer.checkpoints import load_model
    from style_transformer.data.datasets import binary_columns, load_labels
    from style_transformer.data.images import load_image
    from style_transformer.editing.toolkit import EditingModels
    from style_transformer.workflow import load_latents

    safes, pts = _model_files(tmp)
    base = _editing_folder(tmp)

    def into_folder(relative: str):
        def write(path: Path, data: bytes) -> Path:
            import shutil

            folder = path.with_suffix("")
            if folder.exists():
                shutil.rmtree(folder)
            shutil.copytree(base, folder)
            (folder / relative).write_bytes(data)
            return folder

        return write

    def labels(path: Path):
        load_labels(path)
        return binary_columns(path)

    targets = [
        Target("image", ".png", load_image, _image_seeds()),
        Target("latents.npz", ".npz", load_latents, _npz_seeds()),
        Target("safetensors", ".safetensors", load_model, safes),
        Target("official .pt (ST, rosinality, pSp, e4e)", ".pt", load_model, pts),
        Target("labels csv/txt", ".txt", labels, _label_seeds()),
        Target("editing.json", ".json", EditingModels.load, [_editing_seed(tmp)], folder=into_folder("editing.json")),
        Target("directions.json", ".json", EditingModels.load, [(base / "directions" / "directions.json").read_bytes()],
               folder=into_folder("directions/directions.json")),
        Target("direction .npy", ".npy", EditingModels.load, [(base / "directions" / "Smiling.npy").read_bytes()],
               folder=into_folder("directions/Smiling.npy")),
    ]
    nvidia = _nvidia_seeds()
    if nvidia:
        targets.append(Target("NVIDIA .pkl", ".pkl", load_model, nvidia))
    return targets


def run_fuzz(n: int, seed: int = 0, tmp: Path = None, progress: bool = False, trace: str = None) -> FuzzReport:
    """Runs ``n`` mutated inputs spread evenly over the loaders; returns the report."""
    from style_transformer.errors import StyleTransformerError

    own = tmp is None
    holder = tempfile.TemporaryDirectory() if own else None
    tmp = Path(holder.name) if own else Path(tmp)
    rng = random.Random(seed)
    targets = build_targets(tmp)
    report = FuzzReport(counts={t.name: Counter() for t in targets})
    for t in targets:  # every seed loads (and whatever the loaders import lazily is imported before any timer)
        for k, data in enumerate(t.seeds):
            path = tmp / f"seed{k}{t.suffix}"
            path.write_bytes(data)
            t.load(t.folder(path, data) if t.folder else path)
    old = signal.signal(signal.SIGALRM, _on_alarm)
    t0 = time.perf_counter()
    try:
        for i in range(n):
            t = targets[i % len(targets)]
            data = rng.choice(t.seeds)
            kind, bad = mutate(data, rng.choice(t.seeds), rng)
            path = tmp / f"input{t.suffix}"
            path.write_bytes(bad)
            what = t.folder(path, bad) if t.folder else path
            if trace:  # for a crash that takes the process down: the last input is on disk and named
                (Path(trace) / f"last{t.suffix}").write_bytes(bad)
                print(f"{i} {t.name} {kind}", file=sys.stderr, flush=True)
            signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
            try:
                t.load(what)
                outcome = "loaded"
            except StyleTransformerError as e:
                msg = str(e)
                outcome = "refused" if msg and "\n" not in msg.strip() else "finding"
                if outcome == "finding":
                    report.findings.append(Finding(t.name, kind, f"multi-line or empty message: {msg[:300]!r}", bad))
            except _Timeout:
                outcome = "finding"
                report.findings.append(Finding(t.name, kind, f"no answer within {TIMEOUT_S} s", bad))
            except Exception as e:  # noqa: BLE001 (anything else is what the harness looks for)
                outcome = "finding"
                where = traceback.extract_tb(e.__traceback__)[-1]
                report.findings.append(Finding(t.name, kind, f"{type(e).__name__} at {Path(where.filename).name}:"
                                                             f"{where.lineno}", bad, str(e)[:200]))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            report.counts[t.name][outcome] += 1
            if progress and (i + 1) % 1000 == 0:
                print(f"  {i + 1}/{n} inputs, {len(report.findings)} findings", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGALRM, old)
        report.seconds = time.perf_counter() - t0
        report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if own:
            holder.cleanup()
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="mutated inputs in all (spread over the loaders)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-findings", help="folder to write each finding's input into")
    ap.add_argument("--trace", metavar="DIR", help="write every input to DIR/last.<ext> and log it before loading "
                                                   "(finds inputs that crash the process)")
    args = ap.parse_args(argv)
    report = run_fuzz(args.n, args.seed, progress=True, trace=args.trace)
    print(report.table())
    print(f"{report.total} inputs in {report.seconds:.1f} s ({report.total / report.seconds:.0f}/s), "
          f"peak RSS {report.peak_rss_mb:.0f} MB")
    groups = Counter((f.target, f.error) for f in report.findings)
    for (target, error), count in groups.most_common(30):
        example = next(f.message for f in report.findings if (f.target, f.error) == (target, error))
        print(f"FINDING x{count} [{target}] {error}: {example}")
    if args.save_findings and report.findings:
        out = Path(args.save_findings)
        out.mkdir(parents=True, exist_ok=True)
        for k, f in enumerate(report.findings):
            (out / f"{k:05d}_{f.target.split()[0].replace('/', '_')}.bin").write_bytes(f.data)
        (out / "findings.json").write_text(json.dumps([{"target": f.target, "mutation": f.mutation,
                                                        "error": f.error, "message": f.message}
                                                       for f in report.findings], indent=1))
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())

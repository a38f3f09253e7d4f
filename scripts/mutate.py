"""Mutation testing of the modules whose outputs are contracts, with mutmut 3 (``make mutate``).

Each module is mutated on its own, in a scratch copy of the repository under ``.mutmut/<name>/``
(ignored by git), and each mutant runs only the tests mapped to that module below (mutmut then keeps,
of those, the tests that reach the mutated function). The scratch copies persist, so a later run
re-tests only the functions that changed since (mutmut's incremental mode); ``--fresh`` starts over.

Prints, per module: mutants, killed, survived, not reached by the mapped tests, timeouts (a mutant that
hangs or runs past mutmut's CPU limit: caught), and the score (killed + timeouts) / (killed + timeouts +
survived). ``mutmut`` must be installed (``make mutate`` installs it).

    python scripts/mutate.py [MODULE ...] [--fresh] [--jobs N]
    python scripts/mutate.py MODULE --survivors      # what survived the last run, one line each
    python scripts/mutate.py MODULE --retest-survivors   # after new tests: re-test only the survivors
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "src/style_transformer"
# module -> (files to mutate, tests that state their behaviour[, extra pytest arguments])
MODULES = {
    "ops": ([f"{PKG}/ops.py"], ["tests/test_ops.py", "tests/models/test_stylegan3.py"]),
    "synthetic": ([f"{PKG}/data/synthetic.py"], ["tests/test_synthetic.py", "tests/test_golden.py"]),
    "images": ([f"{PKG}/data/images.py"], ["tests/test_images.py"]),
    "metrics": ([f"{PKG}/metrics/image.py", f"{PKG}/metrics/fid.py", f"{PKG}/metrics/video.py"],
                ["tests/metrics", "tests/test_video.py"], ["-m", "not slow"]),
    # the loaders: official formats are also read by the parity tests and the official editing models' tests
    "checkpoints": ([f"{PKG}/checkpoints/io.py", f"{PKG}/checkpoints/official.py"],
                    ["tests/checkpoints", "tests/test_parity.py", "tests/models/test_psp.py",
                     "tests/models/test_editing.py", "tests/models/test_classifier.py"],
                    ["-m", "not slow"]),  # not the full-size networks: minutes a mutant
    "unpickle": ([f"{PKG}/checkpoints/unpickle.py"], ["tests/checkpoints"], ["-m", "not slow"]),
    "directions": ([f"{PKG}/editing/directions.py"], ["tests/editing/test_directions.py"]),
    "web": ([f"{PKG}/web/app.py"], ["tests/web/test_app.py"]),
}
# wall-clock limit of a mutant's tests, as a multiple of their measured time (mutmut's CPU limit is twice it)
TIMEOUT_MULTIPLIER = 4
# mutmut's exit codes per mutant (mutants/<file>.meta); -24: stopped by mutmut's CPU-time limit (SIGXCPU)
KILLED, SURVIVED, NO_TESTS, TIMEOUT, CPU_LIMIT = 1, 0, 33, 36, -24


def _sync(dst: Path) -> None:
    """Copies the sources, tests and project files into ``dst``, leaving unchanged files untouched
    (their timestamps tell mutmut what to re-test)."""
    for sub in ("src", "tests"):
        for path in (ROOT / sub).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            target = dst / path.relative_to(ROOT)
            if target.exists() and target.read_bytes() == path.read_bytes():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    for name in ("pyproject.toml",):
        shutil.copy2(ROOT / name, dst / name)


def _config(dst: Path, files, tests, pytest_args=()) -> None:
    lines = lambda xs: "".join(f"\n    {x}" for x in xs)  # noqa: E731 (setup.cfg lists: one value per line)
    (dst / "setup.cfg").write_text(
        "[mutmut]\n"
        f"paths_to_mutate ={lines(files)}\n"
        f"also_copy ={lines([PKG])}\n"  # the whole package, so the tests import the mutated copy
        f"tests_dir ={lines(tests)}\n"
        f"pytest_add_cli_args ={lines(['-p', 'no:cacheprovider', *pytest_args])}\n"
        # a mutant that hangs is stopped after TIMEOUT_MULTIPLIER x its tests' time (+1 s), not mutmut's 15 x
        f"timeout_multiplier = {TIMEOUT_MULTIPLIER}\n")


def _results(dst: Path):
    """(mutant name, mutmut exit code or None) of every mutant of the run in ``dst``."""
    for meta in sorted(glob.glob(str(dst / "mutants" / "**" / "*.meta"), recursive=True)):
        yield from json.loads(Path(meta).read_text())["exit_code_by_key"].items()


def _counts(dst: Path) -> dict:
    counts = {"mutants": 0, "killed": 0, "survived": 0, "no tests": 0, "timeout": 0, "other": 0}
    for _, code in _results(dst):
        counts["mutants"] += 1
        key = {KILLED: "killed", SURVIVED: "survived", NO_TESTS: "no tests", TIMEOUT: "timeout",
               CPU_LIMIT: "timeout"}.get(code, "other")
        counts[key] += 1
    return counts


def _survivor_keys(dst: Path) -> list:
    return [key for key, code in _results(dst) if code == SURVIVED]


def _list_survivors(mutmut: str, dst: Path) -> None:
    """One line per surviving mutant of the run in ``dst``: its name and the line it changed."""
    env = dict(os.environ, PYTHONPATH="src")
    for key in _survivor_keys(dst):
        diff = subprocess.run([mutmut, "show", key], cwd=dst, env=env, capture_output=True, text=True).stdout
        old = [x[1:].strip() for x in diff.splitlines() if x.startswith("-") and not x.startswith("---")]
        new = [x[1:].strip() for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
        print(f"{key.rsplit('.', 1)[-1]}: {old[0] if old else '?'}  ->  {new[0] if new else '?'}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", metavar="MODULE",
                   help=f"modules to mutate (default: all of {', '.join(MODULES)})")
    p.add_argument("--fresh", action="store_true", help="forget earlier results and start over")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    p.add_argument("--retest-survivors", action="store_true",
                   help="re-test only the last run's survivors (after adding tests; the sources unchanged)")
    p.add_argument("--survivors", action="store_true",
                   help="list the surviving mutants of the last run (one line each: name, old -> new) and stop")
    args = p.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if shutil.which("mutmut") is None and not (Path(sys.executable).parent / "mutmut").exists():
        sys.exit("mutmut is not installed: pip install 'mutmut>=3' (make mutate installs it)")
    mutmut = shutil.which("mutmut") or str(Path(sys.executable).parent / "mutmut")
    if args.survivors:
        for name in args.modules or list(MODULES):
            _list_survivors(mutmut, ROOT / ".mutmut" / name)
        return 0
    rows = []
    for name in args.modules or list(MODULES):
        files, tests, *extra = MODULES[name]
        dst = ROOT / ".mutmut" / name
        if args.fresh and dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True, exist_ok=True)
        _sync(dst)
        _config(dst, files, tests, *extra)
        t0 = time.perf_counter()
        env = dict(os.environ, PYTHONPATH="src", OMP_NUM_THREADS="1")
        names = _survivor_keys(dst) if args.retest_survivors else []
        if args.retest_survivors and not names:
            print(f"{name}: no survivors to re-test")  # (an empty name list would make mutmut run them all)
            run = subprocess.CompletedProcess([], 0, "", "")
        else:
            run = subprocess.run([mutmut, "run", "--max-children", str(args.jobs), *names], cwd=dst, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        counts = _counts(dst)
        if run.returncode != 0 and counts["mutants"] == 0:
            print(f"{name}: mutmut failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
            continue
        caught = counts["killed"] + counts["timeout"]  # a mutant that hangs is caught too
        decided = caught + counts["survived"]
        score = 100 * caught / decided if decided else float("nan")
        rows.append((name, counts, score, time.perf_counter() - t0))
    print(f"{'module':<12} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8} {'score':>7} {'time':>7}")
    for name, c, score, secs in rows:
        print(f"{name:<12} {c['mutants']:>8} {c['killed']:>7} {c['survived']:>9} {c['no tests']:>9} {c['timeout']:>8} "
              f"{score:>6.1f}% {secs:>6.0f}s")
    print("survivors: cd .mutmut/MODULE && mutmut results; mutmut show NAME")
    return 0


if __name__ == "__main__":
    sys.exit(main())

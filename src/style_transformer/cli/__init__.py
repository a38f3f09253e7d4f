"""``style-transformer`` command line: thin wrappers over the public API.

Exit codes: 0 success; 1 some inputs failed (skipped with a warning, the rest written);
2 usage error, missing path, wrong checkpoint or latents (one error line, nothing written).

One module per command group; this module builds the parser in the documented command order
and is the one place where the library's errors become exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from ..errors import StyleTransformerError, UsageError  # noqa: F401  (UsageError: callers import it here)
from . import data, deploy, directions, editing, editing_eval, evaluation, inversion, serve, training, video

EXAMPLES = """examples:
  style-transformer invert photos/ face.jpg --checkpoint style_transformer_ffhq.pt --out out/
  style-transformer generate --generator stylegan2-ffhq-config-f.pt --n 8 --seed 1 --truncation 0.7 --out samples/
  style-transformer generate --generator model.safetensors --latents out/latents.npz --out renders/
  style-transformer convert style_transformer_ffhq.pt model.safetensors
  style-transformer dataset synth --n 1000 --out faces/ --size 64 --seed 0
"""

ORDER = ['invert', 'generate', 'dataset', 'fid', 'train-gan', 'train-encoder', 'demo', 'eval-encoder', 'directions', 'train-editor', 'edit', 'invert-video', 'edit-video', 'eval-video', 'calibrate', 'eval-editing', 'evaluate', 'serve', 'eval-generator', 'train-classifier', 'inspect', 'convert', 'export']
COMMANDS = {**inversion.COMMANDS, **training.COMMANDS, **directions.COMMANDS, **editing.COMMANDS,
            **editing_eval.COMMANDS, **evaluation.COMMANDS, **data.COMMANDS, **serve.COMMANDS,
            **deploy.COMMANDS, **video.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="style-transformer", description="Style Transformer GAN inversion toolkit.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name in ORDER:
        COMMANDS[name][0](sub)
    return p


class _WarningLines(logging.Handler):
    """The CLI's one way to show the library's warnings: ``warning: MESSAGE``, one line each on stderr,
    written between progress-bar redraws (``tqdm.write``) so a bar is not broken."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)
        except Exception:  # noqa: BLE001 (a warning must never end the run)
            self.handleError(record)


def _show_warnings() -> None:
    package = logging.getLogger("style_transformer")
    if not any(isinstance(h, _WarningLines) for h in package.handlers):
        package.addHandler(_WarningLines(logging.WARNING))
        package.setLevel(logging.INFO)
        package.propagate = False  # shown once, by this handler


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns the exit code (the console script exits with it)."""
    _show_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {name: handler for name, (_, handler) in COMMANDS.items()}
    try:
        return handlers[args.command](args)
    except StyleTransformerError as e:  # the one place where expected problems become exit codes
        print(f"style-transformer: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("style-transformer: interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    sys.exit(main())

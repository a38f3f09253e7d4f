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
from .editing import _latents_and_labels  # noqa: F401
from .training import _training_device  # noqa: F401

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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns the exit code (the console script exits with it)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
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

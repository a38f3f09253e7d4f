"""The one error model: every expected problem (bad input, a wrong checkpoint, a usage mistake, a
failed training run, a missing device) is a ``StyleTransformerError``. Its ``exit_code`` is what
the command line exits with; the CLI converts these, and only these, into one message line, in one
place (``cli.main``). Anything else reaching the CLI is a bug and keeps its traceback.

Exit codes: 2 for a mistake in what was asked (arguments, input files, checkpoints, devices),
1 for a run that failed (training diverged, some inputs could not be processed).
"""

from __future__ import annotations


class StyleTransformerError(Exception):
    """Base of the library's errors for expected problems."""

    exit_code = 1


class UsageError(StyleTransformerError):
    """An argument or a combination of them that cannot work."""

    exit_code = 2


class InputError(StyleTransformerError):
    """An input the user pointed at cannot be used (missing, unreadable, wrong shape or content)."""

    exit_code = 2


class OutputError(StyleTransformerError):
    """An output cannot be written (a read-only folder, a full disk); nothing partial is left behind."""

    exit_code = 2


class DeviceError(StyleTransformerError):
    """The requested device is not available."""

    exit_code = 2


class RunError(StyleTransformerError):
    """A long run stopped on a problem of its own (e.g. a non-finite loss)."""

    exit_code = 1

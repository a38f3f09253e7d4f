"""``python -m style_transformer.cli`` (and ``torchrun -m style_transformer.cli``)."""

import sys

from . import main

sys.exit(main())

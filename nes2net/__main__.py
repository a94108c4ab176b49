"""`python -m nes2net ...` is the `nes2net` command (also under `accelerate launch -m nes2net ...`)."""

import sys

from .cli import main

sys.exit(main())

"""The `nes2net` distribution's own import name: its version and the `nes2net` command line (`nes2net.cli`).

Importing it costs nothing (no torch): the model is `modeling_nes2net`, training and evaluation `training`, cards and
publishing `hub_cards` (docs/architecture.md).
"""

__version__ = "0.1.0"

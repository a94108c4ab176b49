"""Sub-commands of the `nes2net` CLI; each module has `add_arguments(parser)` and `run(args) -> int`."""

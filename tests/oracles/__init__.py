"""Independent transcriptions of published algorithms: the oracles the package is tested against (and the baselines of `benchmarks/`)."""

"""The benchmark scripts, run from the repository root as modules: ``python -m bench.speed train ...``."""

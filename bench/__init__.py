"""arnisd benchmarks: ``python -m bench`` prints every figure against its target.

The parts live in ``bench.parts``; ``bench.procs`` measures processes (peak memory, load);
the older single-purpose scripts (``bench_generate.py``, ``bench_cluster.py``,
``bench_terrain.py``) still run on their own.
"""

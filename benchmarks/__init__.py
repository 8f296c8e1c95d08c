"""Speed and memory of autograd_core against hand-written NumPy and other engines.

Run ``python -m benchmarks`` (``--quick`` for a smoke run); it prints one table
and writes ``benchmarks/results/latest.json``. See ``runner.py`` for how each
figure is measured and ``workloads.py`` for what is measured.
"""

"""autosc's benchmarks: measurements, not tests. Each is a module run from the repository root.

    python -m benchmarks.<name> --help

They import autosc as any user would (``pip install -e .``), run the public stages of a compress run
(:mod:`autosc.run`) or the public calls under them, and write a results file under ``benchmarks/results/``;
every one that runs jobs runs them on :mod:`benchmarks.runner` (done-keys and resume, the machine stamp, rows,
``--summary``, paired differences, the ONNX p50 by the product's timer). ``benchmarks/README.md`` lists them.
"""

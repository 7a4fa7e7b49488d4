"""The one way the product opens an ONNX Runtime session on a bundle's models.

One CPU thread unless asked (a gateway shares its box), warnings off (a classifier's declared
label shape warns on every batched run: noise, not a fault), and no graph optimizations.

Why none: a bundle's models are tree ensembles, whose cost is in the ensemble kernels either
way. What ONNX Runtime rewrites at load (constant folding of the anomaly model's many small
Cast/Reshape/Equal nodes, above all) roughly doubled the time to open that model, on every
gateway start and bundle check, to save time only when it scores every SKU at once, which
the gateway never asks of it (it scores the few SKUs a detector asks about). The rewrites do
not change what the models compute: ``tests/test_onnx_session.py`` holds the outputs equal to
the bit to those of a session with every optimization.

>>> import onnxruntime as ort
>>> options = session_options(threads=2)
>>> options.intra_op_num_threads, options.graph_optimization_level.name
(2, 'ORT_DISABLE_ALL')
"""

from __future__ import annotations

from typing import Any


def session_options(threads: int = 1) -> Any:
    """The ``onnxruntime.SessionOptions`` every session uses (see the module docstring)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def open_session(model_bytes: bytes, threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` on ``model_bytes`` with ``threads`` intra-op threads.
    ONNX Runtime is imported here, not with the module: a gateway without a bundle never loads
    it."""
    import onnxruntime as ort

    options = session_options(threads)
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

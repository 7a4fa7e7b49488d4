"""Keep the training command's output to our own progress lines: the libraries it drives
(MLflow, LightGBM, statsforecast, scikit-learn, ONNX converters) print deprecation and hint
warnings, INFO logs and download progress bars that say nothing to the person running it.

Only third-party modules are quietened: warnings raised from our own packages, our progress
lines (plain ``print`` to stderr) and every exception still come through. ``SHELFCAST_VERBOSE=1``
leaves everything as the libraries want it.

>>> import warnings
>>> with warnings.catch_warnings(record=True) as seen:
...     warnings.simplefilter("always")
...     silence_library_noise()
...     warnings.warn_explicit("a hint", UserWarning, "x.py", 1, module="mlflow.pyfunc")
...     warnings.warn_explicit("ours", UserWarning, "y.py", 1, module="training.train")
>>> [str(w.message) for w in seen]
['ours']
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator

NOISY_MODULES = (
    "mlflow",
    "lightgbm",
    "statsforecast",
    "sklearn",
    "skl2onnx",
    "onnxmltools",
    "alembic",
    "numba",
    "coreforecast",
    "utilsforecast",
)


def silence_library_noise() -> None:
    """Filter the noisy libraries' warnings and INFO logs; turn off MLflow's progress bars."""
    if os.environ.get("SHELFCAST_VERBOSE"):
        return
    for module in NOISY_MODULES:
        pattern = rf"{module}(\..*)?$"
        warnings.filterwarnings("ignore", module=pattern)
        logging.getLogger(module).setLevel(logging.ERROR)
    # pandas warnings raised on behalf of a library's call: attributed to pandas itself.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pandas(\..*)?$")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow sets its loggers' level from this when it is imported (after this call, or
    # already: then the setLevel above has done it).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")


@contextlib.contextmanager
def mlflow_console_quiet() -> Iterator[None]:
    """Hold back what MLflow writes to stderr in the block ("Successfully registered model",
    "Created version", hints: its console lines ignore logging levels, and MLflow re-enables
    its own stream mid-call). Nothing of ours prints inside; if the block fails, the held-back
    text is written out before the error, so nothing that explains a failure is lost."""
    import io
    import sys

    if os.environ.get("SHELFCAST_VERBOSE"):
        yield
        return
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    except BaseException:
        sys.stderr.write(held.getvalue())
        raise

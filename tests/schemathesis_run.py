"""Run schemathesis (its CLI, every check) against a served API and count the failures.

Used by ``tests/test_schemathesis_api.py`` (asserts none) and ``benchmarks/api.py`` (reports the
count). The schema is the app's own ``/openapi.json``.

>>> outcome = run_schemathesis("http://127.0.0.1:8080", token="t", max_examples=10)  # doctest: +SKIP
>>> outcome.failures                                                                 # doctest: +SKIP
0
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass
class SchemathesisOutcome:
    """What one run found: failing test cases, operations tested, and the CLI's output."""

    failures: int
    errors: int
    tests: int
    exit_code: int
    output: str


def _cli() -> str:
    return str(Path(sys.executable).with_name("schemathesis"))


def run_schemathesis(
    base_url: str,
    token: str | None,
    max_examples: int = 25,
    seed: int = 1,
    phases: str = "examples,coverage,fuzzing,stateful",
    timeout: float = 600.0,
) -> SchemathesisOutcome:
    """Run every check on every operation of ``{base_url}/openapi.json``; count failures."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [_cli(), "--config-file", str(CONFIG), "run", f"{base_url}/openapi.json"]
        cmd += ["--checks", "all", "--max-examples", str(max_examples), "--seed", str(seed)]
        cmd += ["--phases", phases, "--workers", "1", "--no-shrink"]
        cmd += ["--report", "junit", "--report-junit-path", str(junit)]
        if token:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp
        )
        failures = errors = tests = 0
        if junit.exists():
            root = ET.parse(junit).getroot()
            for suite in root.iter("testsuite"):
                tests += int(suite.get("tests", 0))
            failures = sum(1 for _ in root.iter("failure"))
            errors = sum(1 for _ in root.iter("error"))
    return SchemathesisOutcome(failures, errors, tests, proc.returncode, proc.stdout + proc.stderr)

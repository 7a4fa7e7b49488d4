"""The built gateway image, run inside its own file system (chroot into the exported rootfs).

Building the image with podman's vfs driver takes minutes, beyond what `make test` may spend, so
CI does not build it: `make image-test` builds it and runs docker/smoke.py. These tests run the
same smoke test when an image has been built here (and skip, saying so, when it has not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docker"))

pytestmark = pytest.mark.slow


def podman(*args: str) -> subprocess.CompletedProcess:
    script = 'source docker/podman.sh; podman_ "$@"'
    return subprocess.run(
        ["bash", "-c", script, "podman", *args], cwd=ROOT, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("the image smoke test needs root (chroot, mounts, podman's vfs store)")
    if podman("image", "exists", "localhost/shelfcast-edge:latest").returncode != 0:
        pytest.skip("gateway image not built here: run `make image-test` (not in CI: see README)")
    dest = tmp_path_factory.mktemp("image") / "rootfs"
    subprocess.run(["bash", str(ROOT / "docker/export_rootfs.sh"), str(dest)], check=True)
    return dest


def test_image_has_no_training_libraries(rootfs):
    site = next((rootfs / "opt/shelfcast/lib").glob("python3*/site-packages"))
    names = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"onnxruntime", "river", "paho_mqtt", "fastapi"} <= names
    assert not names & {"lightgbm", "statsforecast", "mlflow", "pandas", "scikit_learn"}
    assert not (site / "training").exists()


def test_image_smoke(rootfs):
    from smoke import smoke

    result = smoke(rootfs)
    assert result["passed"], json.dumps(result, indent=2)
    assert result["user"] == "10001:10001"
    assert any(a.endswith("/alerts/stockout") for a in result["alerts"])

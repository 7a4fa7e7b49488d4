"""The gateway's footprint: image size, edge-only venv size, memory at 50,000 SKUs, cold start.

- ``image_mb``: size of the built gateway image (``make image``), beside the base image it is
  built on (``base_image_mb``, the baseline);
- ``edge_venv_mb``: a fresh virtualenv with only ``.[edge]`` installed, beside this checkout's
  full development venv (``dev_venv_mb``, the baseline), and whether any training library
  slipped into it;
- ``rss_mb_50k_skus``: resident memory of ``shelfcast serve`` running inside the image's file
  system (chroot, its own python and user) with a model bundle loaded, after a receipt and a
  sale for each of 50,000 SKUs (synthetic SKU ids: the real data has at most 30,490 item x store
  series in one set); median over the runs;
- ``cold_start_s``: process start to the first alert received on MQTT (the process starts, its
  HEALTHCHECK passes, three events are posted, the alert they cause arrives); median;
- ``smoke_test_passed``: every run of ``docker/smoke.py`` passed.

Image figures need root and a built image; where either is missing they are null with a reason.

    sudo .venv/bin/python benchmarks/footprint.py --json out.json
    sudo .venv/bin/python benchmarks/footprint.py --quick --json out.json   # 1 run, 5,000 SKUs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.machine import machine  # noqa: E402

TRAINING_LIBS = ("lightgbm", "statsforecast", "mlflow", "pandas", "scikit_learn", "sklearn")


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return round(int(out.stdout.split()[0]) / 1024, 1)


def edge_venv() -> dict:
    """Install ``.[edge]`` into a fresh venv (non-editable, as the image does) and size it."""
    with tempfile.TemporaryDirectory(prefix="shelfcast-edge-venv-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
        print("installing .[edge] into a fresh venv ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        subprocess.run([*pip, f"{ROOT}[edge]"], check=True, cwd=tmp)
        took = time.monotonic() - start
        site = next((venv / "lib").glob("python3*/site-packages"))
        names = sorted(p.name.split("-")[0].lower() for p in site.glob("*.dist-info"))
        return {
            "edge_venv_mb": du_mb(venv),
            "edge_venv_packages": names,
            "training_libs_in_edge_venv": [n for n in names if n in TRAINING_LIBS],
            "edge_venv_install_s": round(took, 1),
        }


def podman(*args: str) -> subprocess.CompletedProcess:
    script = 'source docker/podman.sh; podman_ "$@"'
    return subprocess.run(
        ["bash", "-c", script, "podman", *args], cwd=ROOT, capture_output=True, text=True
    )


def image_sizes() -> dict:
    """Sizes of the gateway image and its base from the project's podman store (root only)."""
    if os.geteuid() != 0:
        return {"image_mb": None, "image_reason": "needs root (the project's podman store)"}
    sizes = {}
    for key, tag in (
        ("image_mb", "localhost/shelfcast-edge:latest"),
        ("base_image_mb", "localhost/shelfcast-base:bookworm"),
    ):
        found = podman("image", "inspect", "--format", "{{.Size}}", tag)
        sizes[key] = round(int(found.stdout) / 1e6, 1) if found.returncode == 0 else None
    if sizes["image_mb"] is None:
        sizes["image_reason"] = "image not built: run `make image`"
    return sizes


def default_bundle() -> Path | None:
    """The demo's trained bundle when it verifies, else None (smoke.py then builds a tiny one)."""
    from api import bundle_store
    from models.bundle import BundleError
    from training.signing_key import public_key_path, signing_key_path

    candidate = ROOT / "var/demo/bundle"
    key = public_key_path(ROOT / signing_key_path())
    try:
        bundle_store.verify(candidate, bundle_store.BundleTrust(public_key=str(key)))
    except (BundleError, FileNotFoundError, OSError):
        return None
    return candidate


def image_runs(runs: int, skus: int, bundle: Path | None) -> dict:
    """Export the image's rootfs and run the smoke test ``runs`` times with ``skus`` SKUs."""
    missing = {"rss_mb_50k_skus": None, "cold_start_s": None, "smoke_test_passed": None}
    if os.geteuid() != 0:
        return {**missing, "reason": "needs root (chroot into the image's file system)"}
    rootfs = ROOT / "var/image/rootfs"
    exported = subprocess.run(["bash", str(ROOT / "docker/export_rootfs.sh"), str(rootfs)])
    if exported.returncode != 0:
        return {**missing, "reason": "could not export the image (run `make image` first)"}
    sys.path.insert(0, str(ROOT / "docker"))
    from smoke import smoke  # docker/smoke.py: the image smoke test

    results = []
    for i in range(runs):
        print(f"smoke run {i + 1}/{runs} ({skus} SKUs) ...", file=sys.stderr, flush=True)
        results.append(smoke(rootfs, bundle, skus))
        if not results[-1]["passed"]:
            break
    passed = all(r["passed"] for r in results)
    good = [r for r in results if r["passed"]]
    out = {
        "smoke_test_passed": passed,
        "cold_start_s": statistics.median(r["cold_start_s"] for r in good) if good else None,
        "rss_mb_50k_skus": (
            statistics.median(r["rss_mb_skus"] for r in good) if good and skus else None
        ),
        "sku_count": skus,
        "runs": results,
    }
    if not passed:
        out["reason"] = results[-1].get("error")
    if skus != 50_000:
        out["rss_mb_50k_skus"] = None
        out["rss_mb_at_skus"] = statistics.median(r["rss_mb_skus"] for r in good) if good else None
        out.setdefault("reason", f"quick mode: {skus} SKUs, not 50,000")
    return out


def table(result: dict) -> str:
    rows = [
        ("image_mb", result.get("image_mb"), f"base image {result.get('base_image_mb')} MB"),
        (
            "edge_venv_mb",
            result.get("edge_venv_mb"),
            f"full dev venv {result.get('dev_venv_mb')} MB",
        ),
        ("rss_mb_50k_skus", result.get("rss_mb_50k_skus"), "goal <= 300"),
        ("cold_start_s", result.get("cold_start_s"), "process start to first MQTT alert"),
        ("smoke_test_passed", result.get("smoke_test_passed"), "chroot into the image rootfs"),
    ]
    lines = ["| figure | value | note |", "| --- | --- | --- |"]
    lines += [f"| {k} | {'not measured' if v is None else v} | {n} |" for k, v, n in rows]
    m = result["machine"]
    lines.append(
        f"| machine | {m['nproc']} CPUs, {m['memory_gib']} GiB | {m['cpu']}, load {m['load_average_1m_at_start']} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--quick", action="store_true", help="one run with 5,000 SKUs")
    parser.add_argument("--runs", type=int, default=3, help="smoke runs (median; default 3)")
    parser.add_argument("--skus", type=int, default=50_000, help="SKUs to load (default 50,000)")
    parser.add_argument(
        "--bundle", type=Path, help="bundle to load (default: the demo's, else tiny)"
    )
    parser.add_argument("--skip-venv", action="store_true", help="do not build the edge venv")
    args = parser.parse_args()
    runs, skus = (1, 5_000) if args.quick else (args.runs, args.skus)

    result: dict = {"machine": machine(), "dev_venv_mb": du_mb(ROOT / ".venv")}
    if args.skip_venv:
        result["edge_venv_mb"] = None
        result["edge_venv_reason"] = "--skip-venv"
    else:
        result.update(edge_venv())
    result.update(image_sizes())
    bundle = args.bundle or default_bundle()
    result["bundle"] = str(bundle) if bundle else "tiny ONNX bundle (docker/smoke.py)"
    result.update(image_runs(runs, skus, bundle))
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result.get("smoke_test_passed") is not False else 1


if __name__ == "__main__":
    raise SystemExit(main())

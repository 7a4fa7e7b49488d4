"""A real, small filesystem that fills up: a tmpfs the test mounts and unmounts.

``fill(path)`` writes a filler file until the filesystem refuses (ENOSPC); deleting it gives
the space back. Mounting needs root (CAP_SYS_ADMIN): without it the fixture skips and says so.

Fixture: ``small_disk`` (a mounted 8 MiB tmpfs, a ``Path``).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SIZE = "8m"


def fill(where: Path) -> Path:
    """Fill the filesystem of ``where`` to the last block; returns the filler file."""
    filler = where / "filler.bin"
    chunk = b"\0" * 65536
    # Unbuffered: a buffer holding bytes that did not fit would raise again when closed.
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
        # The buffered tail: write smaller pieces until not even one byte fits.
        for size in (4096, 512, 1):
            try:
                while True:
                    os.write(out.fileno(), b"\0" * size)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
    return filler


def mount_small_disk(where: Path, size: str = SIZE, read_only: bool = False) -> None:
    """Mount a tmpfs of ``size`` at ``where``; ``pytest.skip`` with the reason if not allowed.
    ``read_only``: nobody can write there, root included (permissions would not stop root)."""
    where.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount") or "/usr/bin/mount"
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")


def unmount(where: Path) -> None:
    subprocess.run([shutil.which("umount") or "/usr/bin/umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "small_disk"
    mount_small_disk(where)
    try:
        yield where
    finally:
        unmount(where)

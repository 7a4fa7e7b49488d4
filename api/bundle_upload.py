"""Unpacking an uploaded model bundle archive safely, before the runtime verifies it.

Only data crosses: regular files and directories, no links, devices or paths leaving the
target, a bounded number of members and of unpacked bytes (no archive bombs). Nothing from the
archive is ever imported or executed; the runtime then checks every SHA-256 digest and the
feature spec (``models.bundle.load_bundle``) before it swaps.

The archive arrives as a file (the upload streams to disk): nothing here holds it in memory.

>>> import io, tarfile, tempfile, pathlib
>>> tmp = tempfile.TemporaryDirectory()
>>> work = pathlib.Path(tmp.name)
>>> with tarfile.open(work / "upload", mode="w:gz") as tar:
...     info = tarfile.TarInfo("b/feature_spec.json"); data = b"{}"; info.size = len(data)
...     tar.addfile(info, io.BytesIO(data))
>>> unpack_bundle(work / "upload", work / "unpacked").name
'b'
>>> tmp.cleanup()
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath

MAX_MEMBERS = 64
MAX_UNPACKED = 1024 * 1024 * 1024
MARKER = "feature_spec.json"  # every bundle has one at its root


class ArchiveError(ValueError):
    """The upload is not a bundle archive we accept; the message says why.

    >>> str(ArchiveError("empty body"))
    'empty body'
    """


def _check_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not name:
        raise ArchiveError(f"archive member {name!r} would land outside the bundle directory")
    return path


def _check_totals(count: int, total: int) -> None:
    if count > MAX_MEMBERS:
        raise ArchiveError(f"archive has more than {MAX_MEMBERS} members")
    if total > MAX_UNPACKED:
        raise ArchiveError(f"archive unpacks to more than {MAX_UNPACKED} bytes")


def _untar(archive: Path, target: Path) -> None:
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed below
    except tarfile.TarError:
        raise ArchiveError("not a .tar, .tar.gz or .zip archive") from None
    with tar:
        members = tar.getmembers()
        total = 0
        for m in members:
            _check_name(m.name)
            if not (m.isfile() or m.isdir()):
                raise ArchiveError(f"archive member {m.name!r} is not a regular file or directory")
            total += m.size
        _check_totals(len(members), total)
        tar.extractall(target, filter="data")


def _unzip(path: Path, target: Path) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ArchiveError(f"not a readable zip archive: {err}") from None
    with archive:
        infos = archive.infolist()
        for info in infos:
            _check_name(info.filename)
            if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000, 0o040000):
                raise ArchiveError(f"archive member {info.filename!r} is not a regular file")
        _check_totals(len(infos), sum(i.file_size for i in infos))
        archive.extractall(target)


def unpack_bundle(archive: Path, target: Path) -> Path:
    """Unpack the ``.tar``/``.tar.gz`` or ``.zip`` file ``archive`` into ``target``; return the
    bundle's directory. Error messages never name ``archive`` or ``target`` (temporary paths)."""
    archive = Path(archive)
    with archive.open("rb") as f:
        magic = f.read(4)
    if not magic:
        raise ArchiveError("empty body: send the bundle as a .tar.gz or .zip archive")
    target.mkdir(parents=True, exist_ok=True)
    try:
        if magic == b"PK\x03\x04":
            _unzip(archive, target)
        else:
            _untar(archive, target)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ArchiveError(f"archive could not be unpacked: {reason}") from None
    roots = sorted({p.parent for p in target.rglob(MARKER)})
    if len(roots) != 1:
        raise ArchiveError(f"archive must hold exactly one bundle ({MARKER}); found {len(roots)}")
    return roots[0]

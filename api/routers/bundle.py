"""The model bundle in use, and swapping it for a new one while the gateway runs."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.auth import WRITE, require_reader, require_writer
from api.body_limit import stream_to_file
from api.bundle_upload import ArchiveError, unpack_bundle
from api.deps import RuntimeDep, SettingsDep
from api.errors import responses
from api.runtime import BundleRefused
from api.schemas import BundleInfo

router = APIRouter(prefix="/v1/bundle", tags=["bundle"])


@router.get(
    "",
    response_model=BundleInfo,
    dependencies=[Depends(require_reader)],
    responses=responses(401, 403),
    summary="the bundle in use",
)
def current_bundle(runtime: RuntimeDep) -> BundleInfo:
    return BundleInfo(**runtime.bundle_info())


_ARCHIVE = {
    **WRITE,
    "requestBody": {
        "required": True,
        "description": "the bundle directory as a .tar.gz or .zip archive",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}


@router.put(
    "",
    response_model=BundleInfo,
    dependencies=[Depends(require_writer)],
    responses=responses(401, 403, 413, 422, 503),
    openapi_extra=_ARCHIVE,
    summary="swap to a new bundle",
)
async def swap_bundle(request: Request, runtime: RuntimeDep, settings: SettingsDep) -> BundleInfo:
    """Verify the uploaded bundle (digests, signature, feature spec, reference set) and swap to
    it; 422 says why if refused, 413 if it is over the size limit (checked before reading).

    The upload streams to a temporary file, never into memory. Events keep flowing during the
    swap; a refused bundle leaves the current one in place.
    """
    if runtime.read_only:
        raise HTTPException(503, "this API serves a state directory read-only; swap on the gateway")
    staging = Path(tempfile.mkdtemp(prefix="bundle-upload-"))
    try:
        await stream_to_file(request, settings.max_bundle_bytes, staging / "upload")
        root = await run_in_threadpool(unpack_bundle, staging / "upload", staging / "unpacked")
        info = await run_in_threadpool(runtime.swap_bundle, root)
    except (ArchiveError, BundleRefused) as err:
        # Nobody outside this process should see where the upload was unpacked.
        reason = str(err).replace(str(staging / "unpacked"), "upload").replace(str(staging), "")
        raise HTTPException(422, f"bundle refused: {reason}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BundleInfo(**info)

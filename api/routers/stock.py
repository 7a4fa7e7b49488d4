"""Stock of one SKU and pages of SKUs: on hand, reserved, available-to-promise, confidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from api.auth import require_reader
from api.deps import RuntimeDep, SettingsDep, SkuPath
from api.errors import responses
from api.schemas import StockPage
from edge_runtime.store.stock import StockState

router = APIRouter(
    prefix="/v1/stock",
    tags=["stock"],
    dependencies=[Depends(require_reader)],
    responses=responses(401, 403, 422),
)


@router.get("/{sku:path}", response_model=StockState, responses=responses(404), summary="one SKU")
def stock(sku: SkuPath, runtime: RuntimeDep) -> StockState:
    state = runtime.stock(sku)
    if state is None:
        raise HTTPException(404, f"no stock record for SKU {sku!r} in store {runtime.store_id!r}")
    return state


@router.get("", response_model=StockPage, summary="a page of SKUs in SKU order")
def stocks(
    runtime: RuntimeDep,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> StockPage:
    limit = min(limit, settings.max_page)
    items = runtime.stocks(offset, limit)
    return StockPage(offset=offset, limit=limit, total=runtime.sku_count(), items=items)

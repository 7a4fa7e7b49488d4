"""The hub's JetStream subjects: one definition for the gateway's forwarder and the hub."""

from __future__ import annotations

HUB_SUBJECT_KIND = {"uplink": "stock"}
"""Message kind -> the last subject token where they differ (every other kind keeps its name)."""
RESERVATION = "reservation"  # hub -> store: an online order's reservation event
RESERVATION_RESULT = "reservation_result"  # store -> hub: what the store's ledger decided
INSTALL = "install"  # hub -> store: install (or go back from) a rollout's bundle
ROLLOUT_REPORT = "rollout_report"  # store -> hub: the install's outcome and health since
BUNDLE_STORE = "shelfcast_bundles"  # JetStream object store: <rollout id> -> bundle tar.gz


def hub_subject(store_id: str, kind: str, prefix: str = "shelfcast") -> str:
    """The JetStream subject ``<prefix>.<store>.<kind>`` of a message kind.

    >>> hub_subject("S1", "uplink"), hub_subject("S1", "stockout")
    ('shelfcast.S1.stock', 'shelfcast.S1.stockout')
    """
    if not store_id or any(c in store_id for c in ".*> "):
        raise ValueError(
            f"store id {store_id!r} cannot be a NATS subject token (no . * > or space)"
        )
    return f"{prefix}.{store_id}.{HUB_SUBJECT_KIND.get(kind, kind)}"

"""Which model bundle a gateway decides with, and how a bundle becomes a day-close model and an
intraday warner.

At start: the configured bundle (verified, installed as current; a refused one stops the
gateway with the reason), else the installed one (a damaged one is reported and unused: the
``[policy]`` rules decide). A swap verifies and installs the candidate and builds its ONNX
sessions before the gateway takes its lock, so events wait only for the switch itself. The
models of a bundle are checked in ONNX Runtime once per bundle and trust
(``edge_runtime.checked_models``): a restart with the bundle it checked before opens no
session until a model is first used.

>>> import tempfile
>>> from edge_runtime.bundles import BundleTrust
>>> from edge_runtime.config import load_config
>>> tmp = tempfile.TemporaryDirectory()
>>> cfg = load_config(env={"SHELFCAST_STORE_ID": "S1", "SHELFCAST_STATE_DIR": tmp.name})
>>> life = BundleLifecycle(cfg, BundleTrust.from_config(cfg.model))
>>> life.at_start({}), life.problem
(None, None)
>>> tmp.cleanup()
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from edge_runtime.bundles import BundleTrust, install, is_installed, verify
from edge_runtime.checked_models import CheckedModels
from edge_runtime.config import GatewayConfig
from edge_runtime.decide.configured_policy import decision_settings
from edge_runtime.decide.day_close import DayCloseModel
from edge_runtime.decide.intraday_warning import IntradayWarner, warner_from_ledger
from edge_runtime.forecast.online import ForecastCorrection
from models.bundle import Bundle, BundleError

log = logging.getLogger(__name__)


class BundleLifecycle:
    """The bundle choices of one gateway (see the module docstring); ``problem`` says why an
    installed bundle is not in use (None: it is, or there is none)."""

    def __init__(self, cfg: GatewayConfig, trust: BundleTrust):
        self.cfg, self.trust = cfg, trust
        self.problem: str | None = None
        self.checked = CheckedModels(cfg.bundle_dir.with_name(cfg.bundle_dir.name + ".checked"))

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> BundleLifecycle:
        """With the trust ``[model]`` states (``BundleError`` when its key file is unusable)."""
        trust = BundleTrust.from_config(cfg.model)
        if cfg.model.allow_unsigned:
            log.warning("bundle signatures: %s", trust.describe())
        return cls(cfg, trust)

    def at_start(self, sessions: dict) -> Bundle | None:
        """The bundle to start with; ``sessions`` receives the ONNX sessions it was verified
        with (reused by its model rather than built again; none when its models were checked
        before)."""
        configured, current, checked = self.cfg.model.bundle, self.cfg.bundle_dir, self.checked
        if configured:
            same = Path(configured).resolve() == current.resolve()
            if not same and is_installed(configured, current):
                # A restart with the bundle installed before: its copy is verified (digests,
                # signature, spec; its models if not checked before) instead of copied and
                # verified a second time.
                try:
                    return verify(current, self.trust, sessions, checked)
                except BundleError as err:  # a damaged copy: installed again from the source
                    log.warning("installed copy of %s refused (%s); installing it again",
                                configured, err)  # fmt: skip
                    sessions.clear()
            try:
                if same:  # configured as the installed path itself: verified where it is
                    bundle = verify(configured, self.trust, sessions, checked)
                else:  # its copy is the one checked in full (with sessions) below
                    bundle = verify(configured, self.trust)
            except BundleError as err:  # the operator must see why, and which bundle
                raise BundleError(f"bundle {configured} refused: {err}") from None
            if not same:
                bundle = install(bundle, current, self.trust, sessions)
                checked.remember(bundle.path, self.trust)
            return bundle
        if not current.exists():
            return None
        try:
            return verify(current, self.trust, sessions, checked)
        except BundleError as err:
            self.problem = f"installed bundle refused: {err}"
            log.error("%s; deciding with the [policy] rules", self.problem)
            return None

    def candidate(self, path: str | Path) -> tuple[Bundle, dict]:
        """The bundle at ``path`` verified (``BundleError`` says why it is refused) and
        installed as current, with the ONNX sessions it was verified with."""
        sessions: dict = {}
        current = self.cfg.bundle_dir
        same = Path(path).resolve() == current.resolve()
        bundle = verify(path, self.trust, sessions if same else None)
        if not same:
            bundle = install(bundle, current, self.trust, sessions)
        self.checked.remember(bundle.path, self.trust)
        return bundle, sessions

    def model_for(
        self,
        bundle: Bundle,
        correction: ForecastCorrection | None,
        sessions: dict | None = None,
    ) -> DayCloseModel:
        """The day-close model of ``bundle``, keeping River's ``correction`` (the store's
        learnt residuals do not depend on the model)."""
        m = self.cfg.model
        return DayCloseModel(
            bundle, m.forecast_days, m.scoring_threads, correction=correction,
            buffer_every_days=m.buffer_every_days, sessions=sessions,
            decide_days=decision_settings(self.cfg).protection_days,
        )  # fmt: skip

    def warner_for(self, bundle: Bundle, conn: sqlite3.Connection) -> IntradayWarner | None:
        """The intraday warning of ``bundle`` (None when it has no such model), its window
        rebuilt from the ledger's last days."""
        m = self.cfg.model
        return warner_from_ledger(
            bundle,
            conn,
            self.cfg.gateway.store_id,
            threshold=m.stockout_threshold,
            hysteresis=m.stockout_hysteresis,
            lateness_s=m.intraday_lateness_s,
            threads=m.scoring_threads,
        )

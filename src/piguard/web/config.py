"""What ``piguard serve`` hands each server process: one JSON value in $PIGUARD_SERVE_CONFIG, read by the
``app_from_env`` factory (uvicorn imports it by name, so several workers can run it)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI

ENV = "PIGUARD_SERVE_CONFIG"


class ConfigError(ValueError):
    """A serve option that cannot be used; one line naming the option."""


@dataclass
class ServeConfig:
    ledger: str
    stores: str | None = None
    outbox: str | None = None
    smtp: str | None = None
    signing_key: str | None = None
    key_file: str | None = None
    reports: str | None = None
    secure_cookies: bool = False

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(ENV)
        if not raw:
            raise ConfigError(f"${ENV} is not set (start the server with 'piguard serve')")
        return cls(**json.loads(raw))


def build_service(cfg: ServeConfig) -> Any:
    """Open the ledger, stores, delivery and signing key; every failure is a ConfigError naming the option."""
    from piguard.keys import KeyFileError, load_signing_key
    from piguard.ledger import Ledger, LedgerError, load_key
    from piguard.rights import (
        DeliveryError,
        OutboxDelivery,
        RightsService,
        SmtpDelivery,
        StoresError,
        load_stores,
    )

    if cfg.outbox and cfg.smtp:
        raise ConfigError("give --outbox or --smtp, not both")
    try:
        ledger = Ledger.open(cfg.ledger)
        key = load_key(ledger.url, cfg.key_file, create=True)
    except LedgerError as exc:
        raise ConfigError(f"--ledger: {exc}") from None
    try:
        stores = load_stores(cfg.stores) if cfg.stores else []
    except StoresError as exc:
        raise ConfigError(f"--stores: {exc}") from None
    if cfg.reports and not os.path.isdir(cfg.reports):
        # Checked here: otherwise the server starts and only the staff's reports page fails, much later.
        raise ConfigError(f"--reports: {cfg.reports} is not a directory")
    try:
        delivery = OutboxDelivery(cfg.outbox) if cfg.outbox else SmtpDelivery(cfg.smtp) if cfg.smtp else None
    except DeliveryError as exc:
        raise ConfigError(str(exc)) from None
    try:
        signing = load_signing_key(cfg.signing_key) if cfg.signing_key else None
    except KeyFileError as exc:
        raise ConfigError(f"--signing-key: {exc}") from None
    return RightsService(ledger, key, stores, delivery, signing)


def app_from_env() -> FastAPI:
    from piguard.web.app import create_app

    cfg = ServeConfig.from_env()
    service = build_service(cfg)
    service.purge()
    return create_app(
        service, reports_dir=cfg.reports, secure_cookies=cfg.secure_cookies, housekeeping_seconds=3600
    )

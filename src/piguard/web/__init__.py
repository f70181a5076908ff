"""The web service: FastAPI, thin over ``piguard.rights`` (``piguard serve``). Needs ``piguard[web]``."""

from __future__ import annotations

from piguard.web.app import create_app

__all__ = ["create_app"]

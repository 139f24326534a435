"""Parsl integration: the app (``apps.py``), configs (``configs.py``), and the coordinator backend
with its retry handler (``backend.py``).  Importing this package imports Parsl."""

from candle_restart.parsl.backend import ParslBackend, make_retry_handler

__all__ = ["ParslBackend", "make_retry_handler"]

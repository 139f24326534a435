"""Backends declare their capabilities; the coordinator uses exactly those it declares."""

from __future__ import annotations

from candle_restart.coordinator.backend import BatchSubmit, FinalState, Reconcile
from candle_restart.coordinator.local import LocalBackend
from candle_restart.parsl.backend import ParslBackend
from candle_restart.slurm.backend import SlurmBackend


def test_each_backend_declares_what_it_can_do() -> None:
    capabilities = (BatchSubmit, Reconcile, FinalState)
    has = {
        type(b).__name__: [c.__name__ for c in capabilities if isinstance(b, c)]
        for b in (LocalBackend(), ParslBackend(), SlurmBackend())
    }
    assert has == {
        "LocalBackend": [],
        "ParslBackend": [],
        "SlurmBackend": ["BatchSubmit", "Reconcile", "FinalState"],
    }
    assert issubclass(SlurmBackend, BatchSubmit)  # declared, not only shaped alike


def test_every_backend_names_its_reconcile_grace() -> None:
    for backend in (LocalBackend(), ParslBackend(), SlurmBackend()):
        assert isinstance(backend.reconcile_grace, float) and backend.reconcile_grace > 0

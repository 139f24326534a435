"""YAML-configured sweeps: the schema (``schema.py``), expansion into task directories (``expand.py``)
and the driver that runs a sweep to completion (``run.py``)."""

from candle_restart.sweep.expand import Expansion, expand, parameter_sets
from candle_restart.sweep.schema import Sweep, SweepError, parse_sweep

__all__ = ["Expansion", "Sweep", "SweepError", "expand", "parameter_sets", "parse_sweep"]

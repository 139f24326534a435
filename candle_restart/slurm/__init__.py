"""Slurm batch submission: the sbatch script of a job array (``script.py``) and the coordinator's
Slurm backend with job states from squeue/scontrol/sacct (``backend.py``)."""

from candle_restart.slurm.backend import SlurmBackend, SlurmError, SlurmMissing, read_options, require_slurm

__all__ = ["SlurmBackend", "SlurmError", "SlurmMissing", "read_options", "require_slurm"]

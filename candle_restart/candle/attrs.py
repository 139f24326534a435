"""CANDLE's callback attributes as typed properties over their one owner.

Settings (``save_best``, ``keep_limit``, ...) are read from the frozen `CkptParams`
``self.settings``; assigning one (CANDLE benchmark code does ``ckpt.keep_limit = 3``
after construction) replaces the settings (`dataclasses.replace`) and hands them to
the engine (`CkptEngine.configure`), so every collaborator sees the new value.
The running state (``best_metric_last``, ``epochs``, ``in_training``, ...) is read
from and written to the collaborator that keeps it: the engine, its best tracker,
or the restorer.  Mixed into `candle_restart.candle.facade.CandleCkpt`.
"""

from __future__ import annotations

from dataclasses import replace

from candle_restart.ckpt.background import BackgroundCommit
from candle_restart.ckpt.drain import LOCAL_KEEP, Drainer
from candle_restart.ckpt.engine import CkptEngine, CommitResult
from candle_restart.ckpt.pacing import Pacer
from candle_restart.ckpt.params import CkptParams
from candle_restart.ckpt.restarter import CandleDict, Restorer
from candle_restart.records.ckptinfo import Position


class CandleAttributes:
    """CANDLE's attributes; needs ``settings``, ``engine`` and ``restorer`` of its host."""

    settings: CkptParams
    engine: CkptEngine
    restorer: Restorer

    def _configure(self, settings: CkptParams) -> None:
        """Make ``settings`` the settings of this callback and of every collaborator of its engine."""
        self.settings = settings
        self.engine.configure(settings)

    # ----- settings (gParameters' ckpt_* keys) ---------------------------------------------
    @property
    def epoch_max(self) -> int:
        return self.settings.epochs

    @epoch_max.setter
    def epoch_max(self, value: int) -> None:
        self._configure(replace(self.settings, epochs=int(value)))

    @property
    def skip_epochs(self) -> int:
        return self.settings.skip_epochs

    @skip_epochs.setter
    def skip_epochs(self, value: int) -> None:
        self._configure(replace(self.settings, skip_epochs=int(value)))

    @property
    def ckpt_directory(self) -> str:
        """Fixed at construction: the layout, the lease and the log live there."""
        return self.settings.directory

    @property
    def save_best(self) -> bool:
        return self.settings.save_best

    @save_best.setter
    def save_best(self, value: bool) -> None:
        self._configure(replace(self.settings, save_best=bool(value)))

    @property
    def save_best_metric(self) -> str:
        return self.settings.save_best_metric

    @save_best_metric.setter
    def save_best_metric(self, value: str) -> None:
        self._configure(replace(self.settings, save_best_metric=str(value)))

    @property
    def save_interval(self) -> int:
        return self.settings.save_interval

    @save_interval.setter
    def save_interval(self, value: int) -> None:
        self._configure(replace(self.settings, save_interval=int(value)))

    @property
    def save_weights_only(self) -> bool:
        return self.settings.save_weights_only

    @save_weights_only.setter
    def save_weights_only(self, value: bool) -> None:
        self._configure(replace(self.settings, save_weights_only=bool(value)))

    @property
    def checksum_enabled(self) -> bool:
        return self.settings.checksum

    @checksum_enabled.setter
    def checksum_enabled(self, value: bool) -> None:
        self._configure(replace(self.settings, checksum=bool(value)))

    @property
    def keep_mode(self) -> str:
        """The node-local tier keeps `LOCAL_KEEP` with two tiers; ``ckpt_keep_mode`` is the shared tier's."""
        return self.settings.keep_mode if self.settings.local_directory is None else LOCAL_KEEP[0]

    @keep_mode.setter
    def keep_mode(self, value: str) -> None:
        self._configure(replace(self.settings, keep_mode=str(value)))

    @property
    def keep_limit(self) -> int:
        return self.settings.keep_limit if self.settings.local_directory is None else LOCAL_KEEP[1]

    @keep_limit.setter
    def keep_limit(self, value: int) -> None:
        self._configure(replace(self.settings, keep_limit=int(value)))

    @property
    def metadata(self) -> str | None:
        return self.settings.metadata

    @metadata.setter
    def metadata(self, value: str | None) -> None:
        self._configure(replace(self.settings, metadata=value))

    # ----- running state, kept by the engine's collaborators -------------------------------
    @property
    def best_metric_last(self) -> float | None:
        """The running best; None: none yet."""
        return self.engine.best.value

    @best_metric_last.setter
    def best_metric_last(self, value: float | None) -> None:
        self.engine.best.value = value

    @property
    def epoch_best(self) -> int:
        """This run's best epoch, or the restored one's (0: none)."""
        return self.engine.best.epoch

    @epoch_best.setter
    def epoch_best(self, value: int) -> None:
        self.engine.best.epoch = value

    @property
    def best_mode(self) -> str | None:
        return self.engine.best.mode

    @best_mode.setter
    def best_mode(self, value: str | None) -> None:
        self.engine.best.mode = value

    @property
    def epochs(self) -> list[int]:
        """Epochs this instance committed and still keeps, ascending."""
        return self.engine.epochs

    @property
    def cksum_model(self) -> str:
        return self.engine.cksum_model

    @property
    def links_own(self) -> bool:
        return self.engine.links_own

    @property
    def in_training(self) -> bool:
        """Set by a backend's training hooks: commits run in the background only then."""
        return self.engine.in_training

    @in_training.setter
    def in_training(self, value: bool) -> None:
        self.engine.in_training = value

    @property
    def last_save_time(self) -> float:
        return self.engine.last_save_time

    @last_save_time.setter
    def last_save_time(self, value: float) -> None:
        self.engine.last_save_time = value

    @property
    def saving_position(self) -> Position | None:
        return self.engine.saving_position

    @property
    def committer(self) -> BackgroundCommit[CommitResult]:
        return self.engine.committer

    @property
    def pacer(self) -> Pacer:
        return self.engine.pacer

    @property
    def drainer(self) -> Drainer | None:
        """Two tiers: the drainer; one tier: None."""
        return self.engine.drainer

    @property
    def restart_done(self) -> bool:
        return self.restorer.done

    @property
    def restarted(self) -> CandleDict | None:
        return self.restorer.restarted

    @property
    def verified_files(self) -> set[str]:
        return self.restorer.verified_files

    @property
    def resume_position(self) -> dict[str, int] | None:
        """``{"epoch", "batch"}`` of a mid-epoch checkpoint restart loaded, until training resumes it."""
        p = self.restorer.resume_position
        return None if p is None else {"epoch": p.epoch, "batch": p.batch}

    @resume_position.setter
    def resume_position(self, position: dict[str, int] | None) -> None:
        self.restorer.resume_position = (
            None if position is None else Position(position["epoch"], position["batch"])
        )

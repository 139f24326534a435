"""The bad-host settings in a sweep's ``restart:`` block: checked like the other restart settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from candle_restart.coordinator.policy import Policy
from candle_restart.sweep import parse_sweep
from candle_restart.sweep.run import policy_of
from candle_restart.sweep.yamlfile import SweepError


def _sweep(tmp_path: Path, restart: str) -> Path:
    (tmp_path / "t.py").write_text("")
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\nrun_root: runs\ncommand: [python3, t.py]\nparams: {{epochs: 2}}\nrestart: {restart}\n"
    )
    return path


def test_the_settings_reach_the_policy_and_default_to_policys_own(tmp_path: Path) -> None:
    sweep = parse_sweep(_sweep(tmp_path, "{host_bad_ends: 3, max_excluded_share: 0.5}"))
    policy = policy_of(sweep)
    assert policy.host_bad_ends == 3 and policy.max_excluded_share == 0.5
    assert (
        policy_of(parse_sweep(_sweep(tmp_path, "{}"))).max_excluded_share == Policy.max_excluded_share == 0.25
    )


@pytest.mark.parametrize(
    ("restart", "message"),
    [
        ("{max_excluded_share: 1.5}", "restart.max_excluded_share: must be a share from 0 to 1, got 1.5"),
        ("{max_excluded_share: -0.1}", "restart.max_excluded_share: must be a finite number >= 0"),
        ("{host_bad_ends: -1}", "restart.host_bad_ends: must be an integer >= 0, got -1"),
        ("{host_bad_ends: 1.5}", "restart.host_bad_ends: must be an integer >= 0"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_file_and_key(
    tmp_path: Path, restart: str, message: str
) -> None:
    with pytest.raises(SweepError) as err:
        parse_sweep(_sweep(tmp_path, restart))
    assert message in str(err.value) and "s.yaml" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()

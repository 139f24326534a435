"""A new user's first sweep, end to end, as the README tells it (real Parsl, TensorFlow, Chromium).

The user's own training script lives in a folder of their own next to the YAML: plain
argparse (it knows only its own flags), Keras, and `CandleCkptKeras` given nothing but
``epochs`` (the checkpoint directory comes from the environment the runner sets).  One
grid point needs a module the user forgot; its task fails with that error as its reason, is
given up, and after the module is added ``resume --retry-failed`` brings it back.  ``results``
then lists every task's parameters and metric, and the report shows the parameters.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import ROOT, chromium, headless

TRAIN = textwrap.dedent(
    """\
    import argparse

    parser = argparse.ArgumentParser(description="my model")
    parser.add_argument("--units", type=int, default=4)
    parser.add_argument("--arch", default="plain")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if args.arch == "fancy":
        import fancy_layers  # noqa: F401 - the dependency the user forgot at first

    import keras
    import numpy as np

    from candle_restart import CandleCkptKeras

    keras.utils.set_random_seed(args.units)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(args.units, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    ckpt = CandleCkptKeras({"epochs": args.epochs, "ckpt_save_best_metric": "loss"})
    ckpt.set_model(model)
    J = ckpt.restart(model)
    model.fit(x, y, epochs=args.epochs, initial_epoch=J["epoch"] if J else 0, callbacks=[ckpt], verbose=0)
    """
)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``candle-restart ARGS`` run from the user's folder, with this checkout as the package."""
    return subprocess.run(
        [sys.executable, "-m", "candle_restart.cli", *args],
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_new_users_sweep_of_their_own_script_fails_is_fixed_and_recovered(tmp_path: Path) -> None:
    chromium()  # skip (or fail, in CI) before spending minutes when there is no browser
    mine = tmp_path / "my-project"
    mine.mkdir()
    (mine / "train.py").write_text(TRAIN)
    (mine / "sweep.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: mine
            run_root: runs
            command: [{json.dumps(sys.executable)}, train.py]
            dir_flags: false            # train.py's parser knows only its own flags
            params: {{epochs: 2}}
            vary:
              grid: {{units: [4], arch: [plain, fancy]}}
            restart: {{max_failures: 1, backoff_seconds: 0}}
            """
        )
    )
    run = _cli("sweep", "run", "sweep.yaml", cwd=mine)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "No module named 'fancy_layers'" in run.stdout, run.stdout  # the reason is the error itself
    status = json.loads(_cli("status", "runs", "--json", cwd=mine).stdout)
    by_arch = {t["params"]["arch"]: t for t in status["tasks"]}
    assert status["varied"] == ["arch"]
    assert by_arch["plain"]["state"] == "completed" and by_arch["fancy"]["state"] == "failed"

    (mine / "fancy_layers.py").write_text("# the user installed the missing piece\n")
    retry = _cli("resume", "runs", "--retry-failed", "--watch", "1", cwd=mine)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "2 tasks: 2 completed" in retry.stdout, retry.stdout

    results = _cli("results", "runs", "--format", "csv", cwd=mine)
    assert results.returncode == 0, results.stderr
    rows = list(csv.DictReader(io.StringIO(results.stdout)))
    assert sorted(r["params.arch"] for r in rows) == ["fancy", "plain"]
    assert all(r["state"] == "completed" and float(r["best"]) >= 0 for r in rows), rows
    assert re.search(r"best.*mine-", results.stderr), results.stderr

    report = _cli("report", "runs", cwd=mine)
    assert report.returncode == 0, report.stderr
    dom = headless((mine / "runs" / ".report" / "index.html").as_uri(), tmp_path / "profile", "--dump-dom").stdout
    assert 'data-key="param_arch"' in dom and ">fancy<" in dom and ">plain<" in dom

"""The report page of a run root with completed, resumed, preempted, failed and corrupt tasks (real runs),
opened in headless Chromium."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from candle_restart.cli import main
from candle_restart.records.epochs import EVENTS_FILE
from candle_restart.records.jsontypes import JsonObject
from candle_restart.report import write_report
from candle_restart.report.collect import Resume, TaskReport, collect, summarize
from candle_restart.task import create_task, run_task
from tests.helpers import ARTIFACTS, INJECTED, ROOT, TRAINER, build_run_root, headless, runner_env, snapshot


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(ROOT))
        tasks = build_run_root(root)
    for name in ("toyresumed", "corrupt"):  # as written before events.jsonl existed, without a log
        (tasks[name].ckpts / EVENTS_FILE).unlink()
    return root


def _by_name(tasks: list[TaskReport]) -> dict[str, TaskReport]:
    return {t.task_id.split("-")[0]: t for t in tasks}


def test_collect_reads_metric_restarts_and_attempts_of_each_task(run_root: Path) -> None:
    tasks = _by_name(collect(run_root))
    assert {k: t.status.state for k, t in tasks.items()} == {
        "completed": "completed",
        "resumed": "completed",
        "midepoch": "completed",
        "preempted": "preempted",
        "failed": "failed",
        "corrupt": "corrupt",
        "toyresumed": "completed",
        "new": "new",
        "badinput": "failed",
        "tornstate": "failed",
    }
    resumed = tasks["resumed"]
    assert resumed.values == {1: 0.9, 2: 0.7, 3: 0.75, 4: 0.6, 5: 0.62, 6: 0.5}
    assert sorted(resumed.kept) == [1, 2, 4, 6]  # each best, and every second epoch
    assert (resumed.best_epoch, resumed.best_value) == (6, 0.5)
    assert resumed.resumes == [Resume(2)]  # epoch 3 was not saved: back to epoch 2
    assert (resumed.epochs_trained, resumed.epochs_redone) == (7, 1)
    assert [(a.number, a.outcome, a.exit_code) for a in resumed.attempts] == [
        (1, "preempted", 75),
        (2, "completed", 0),
    ]
    assert tasks["midepoch"].resumes == [Resume(2, mid_epoch=True)]
    assert tasks["midepoch"].epochs_redone == 0
    toy = tasks["toyresumed"]  # no events or log: values and the restart come from the kept checkpoints
    assert toy.values == {1: 1.0, 2: 0.5, 3: pytest.approx(1 / 3), 4: 0.25}
    assert toy.resumes == [Resume(2, source="checkpoint writers")] and toy.epochs_redone is None
    assert toy.attempts[0].where.startswith("pid ") and toy.attempts[0].where != toy.attempts[1].where
    assert tasks["preempted"].values == {1: 0.5, 2: pytest.approx(1 / 3)}
    [problem] = tasks["corrupt"].problems
    assert problem.endswith(
        "epochs/001/ckpt-info.json: is not valid JSON (Expecting property name enclosed in double quotes at line 1 column 2)"
    )
    [problem] = tasks["tornstate"].problems
    assert "tornstate" in problem and "state.json: unreadable" in problem
    assert tasks["new"].attempts == [] and not tasks["new"].values


def test_summary_counts(run_root: Path) -> None:
    s = summarize(collect(run_root))
    assert s.tasks == 10
    assert s.by_state == {"new": 1, "preempted": 1, "failed": 3, "completed": 4, "corrupt": 1}
    # completed 6, resumed 6 + 1 redone, midepoch 4, preempted 2, failed 3, toyresumed 4 (from its
    # newest checkpoint), tornstate 2; the corrupt toy has no checkpoint that reads and no log.
    assert (s.epochs_trained, s.epochs_redone, s.without_log) == (28, 1, 2)
    # failed attempts: the training error and the bad input (the torn state.json's task never failed)
    assert (s.restarts, s.preemptions, s.failures, s.attempts, s.stuck) == (3, 6, 2, 12, 0)


def _count(dom: str, key: str) -> int:
    m = re.search(rf'data-count="{key}"><b>(\d+)</b>', dom)
    assert m, f"no {key} count in the page"
    return int(m.group(1))


def _body(dom: str) -> str:
    """The attributes of ``<body>``, where the page's script leaves its markers."""
    m = re.search(r"<body([^>]*)>", dom)
    assert m, "no <body> in the page"
    return m.group(1)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_page_loads_in_chromium_and_shows_the_summary(
    run_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_root / ".report"
    before = snapshot(run_root, skip=out)
    assert main(["report", str(run_root)]) == 0
    printed = capsys.readouterr()
    assert f"report: {out / 'index.html'} (10 tasks, 7 plots" in printed.out
    assert "ckpt-info.json: is not valid JSON" in printed.err and "state.json: unreadable" in printed.err
    assert snapshot(run_root, skip=out) == before, "the report changed something in the run root"

    url = (out / "index.html").as_uri()
    proc = headless(url, tmp_path / "profile", "--dump-dom")
    dom = proc.stdout
    body = _body(dom)
    assert 'data-report-ready="yes"' in body, "the page's script did not run to its end"
    assert "data-js-errors" not in body and "Uncaught" not in proc.stderr, proc.stderr[-2000:]
    counts = {k: _count(dom, k) for k in ("tasks", "completed", "failed", "preempted", "corrupt", "new")}
    assert counts == {"tasks": 10, "completed": 4, "failed": 3, "preempted": 1, "corrupt": 1, "new": 1}
    facts = ("epochs_trained", "epochs_redone", "restarts", "preemptions", "failures", "attempts")
    assert [_count(dom, k) for k in facts] == [28, 1, 3, 6, 2, 12]
    assert dom.count('<details class="task"') == 10
    # A training error's message is shown as text, never parsed as markup.
    assert INJECTED not in dom and '&lt;b id="injected"&gt;x&lt;/b&gt;' in dom
    images = re.findall(r'<img[^>]* src="([^"]+)"', dom)
    assert len(images) == 9  # 7 tasks with a metric, one overview, the badput bars
    assert "plots/goodput.png" in images and re.search(r">goodput \d+%</h2>", dom)  # the page's lead
    for src in images:
        assert not src.startswith(("http:", "https:", "//")), src
        _png_size(out / src)  # exists and is a PNG

    # The status table sorts in the browser: most attempts first (ties keep their order).
    dom = headless(url + "#sort=-attempts", tmp_path / "profile", "--dump-dom").stdout
    assert 'data-sorted-by="attempts:desc"' in dom
    rows = re.findall(r'<tr data-state="\w+"><td><a href="#task-\d+">([^<]+)</a>', dom)
    attempts = re.findall(r'<tr data-state="\w+">(?:<td.*?</td>){4}<td>(\d+)</td>', dom)
    assert len(rows) == 10 and [int(a) for a in attempts] == sorted(map(int, attempts), reverse=True)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "mixed-run-root.png"
    shot.unlink(missing_ok=True)
    headless(url, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000")
    assert _png_size(shot) == (1280, 2000)
    print(f"screenshot of the report: {shot}")


def test_without_matplotlib_the_page_is_written_without_plots(run_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "page"
    code = (
        "import sys; sys.modules['matplotlib'] = None  # as if it were not installed\n"
        "from candle_restart.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "report", str(run_root), "-o", str(out)],
        env=runner_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    hint = "matplotlib is not installed (pip install 'candle-restart[report]')"
    assert f"no plots: {hint}" in proc.stdout
    page = (out / "index.html").read_text()
    assert hint.replace("'", "&#x27;") in page and "<img" not in page
    assert not list(out.glob("plots/*.png"))


def test_bad_input_is_one_line(run_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"candle-restart: {tmp_path / 'missing'}: is not a directory\n"
    task = next(p for p in run_root.iterdir() if p.name.startswith("completed-"))
    assert main(["report", str(run_root), "-o", str(task / "report")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"is inside the task directory {task}" in err
    assert not (task / "report").exists()


def test_a_second_report_replaces_the_first(run_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    first = write_report(run_root, out)
    (out / "plots" / "task-09999.png").write_bytes(b"stale")  # as if a task had gone since
    (out / "notes.txt").write_text("mine")
    second = write_report(run_root, out, plots=False)
    assert first.plots == 7 and second.plots == 0 and second.note == "plots were turned off (--no-plots)"
    assert not list(out.glob("plots/*.png")) and (out / "notes.txt").read_text() == "mine"


def test_five_hundred_tasks_fold_into_a_readable_page(tmp_path: Path) -> None:
    """500 real tasks (the plots drawn by two forked workers): summaries first, every task folded."""
    root = tmp_path / "run"
    for i in range(500):
        params: JsonObject = {"epochs": 3, "i": i}
        if i % 5 == 0:
            params["preempt_at"] = [2]  # stopped after epoch 2, then resumed
        if i % 7 == 0:
            params["fail_at"] = 2  # raises after epoch 2 (before a preemption would stop it)
        task = create_task(root, params, entry=TRAINER, sweep="many")
        for _ in range(2):
            if run_task(task.path) != 75:
                break
    written = write_report(root, tmp_path / "page", workers=2)
    print(f"report of 500 tasks written in {written.seconds:.1f} s")
    s = written.summary
    assert s.tasks == 500 and written.plots == 500
    assert s.by_state == {"failed": 72, "completed": 428}  # i % 7 == 0 fails at epoch 2
    assert s.preemptions == s.restarts == 100 - 15  # i % 35 == 0 fails first
    assert len(list((tmp_path / "page" / "plots").glob("task-*.png"))) == 500

    dom = headless((tmp_path / "page" / "index.html").as_uri(), tmp_path / "profile", "--dump-dom").stdout
    assert 'data-report-ready="yes"' in _body(dom)
    sections = [m.group(1) for m in re.finditer(r'<section id="(\w+)"', dom)]
    assert sections == ["goodput", "summary", "attention", "overview", "status", "tasks"]
    assert dom.count('<details class="task"') == 500 and "<details open" not in dom
    assert dom.count('<img loading="lazy"') == 500
    assert "and 67 more" in dom  # the failed tasks share one line of the attention list


def test_epochs_are_counted_from_the_log_without_a_best_metric(tmp_path: Path) -> None:
    """With ckpt_save_best off the log has no metric lines: epochs still count, from the save decisions."""
    params: JsonObject = {"epochs": 5, "ckpt_save_best": False, "ckpt_save_interval": 2, "preempt_at": [3]}
    task = create_task(tmp_path / "run", params, entry=TRAINER, sweep="nobest")
    assert [run_task(task.path), run_task(task.path)] == [75, 0]
    [report] = collect(tmp_path / "run")
    assert report.values == {} and sorted(report.kept) == [2, 4, 5]
    assert report.resumes == [Resume(2)]  # epoch 3 was not saved: resumed after epoch 2
    assert (report.epochs_trained, report.epochs_redone) == (6, 1)  # 1 2 3 | 3 4 5


def test_late_renames_of_asynchronous_commits_do_not_shift_epochs() -> None:
    from candle_restart.report.epochlog_legacy import parse_epoch_log

    lines = [
        "Callback initialized.",
        "save_best_metric='val_loss'",
        "metrics: val_loss: current=0.500000 < last=inf",
        "metrics: val_loss: current=0.400000 < last=0.500000",
        "rename:  'ckpts/work' -> 'ckpts/epochs/001'",  # epoch 1's commit, finished during epoch 2
        "rename:  'ckpts/work' -> 'ckpts/epochs/002'",
        "metrics: val_loss: current=0.300000 < last=0.400000",
        "rename:  'ckpts/work' -> 'ckpts/epochs/003'",
    ]
    log = parse_epoch_log("".join(f"2026-01-01 00:00:0{i} CandleCkpt: {line}\n" for i, line in enumerate(lines)))
    assert log.values() == {1: 0.5, 2: 0.4, 3: 0.3}
    assert log.trained == 3 and log.redone == 0


def test_the_restart_dump_of_an_old_log_is_read_through_the_ckpt_info_record() -> None:
    from candle_restart.records.ckptinfo import CkptInfo, Position
    from candle_restart.report.epochlog_legacy import parse_epoch_log

    def log(dump: str) -> str:
        head = ["Callback initialized.", "ckpt-info.json contains:"]
        lines = [f"2026-01-01 00:00:0{i} CandleCkpt: {line}" for i, line in enumerate(head)]
        lines += [f"2026-01-01 00:00:05 CandleCkpt: {dump.splitlines()[0]}", *dump.splitlines()[1:]]
        return "\n".join([*lines, "2026-01-01 00:00:06 CandleCkpt: restarting from epoch: 2"]) + "\n"

    info = CkptInfo(epoch=2, model_file="model.keras", schema_version=1, position=Position(2, 3))
    [session] = parse_epoch_log(log(json.dumps(info.to_dict(), indent=2))).sessions
    assert session.position == {"epoch": 2, "batch": 3} and session.resumed_from == 2
    forged = json.dumps({**info.to_dict(), "model_file": "../outside"}, indent=2)  # not a ckpt-info.json
    [session] = parse_epoch_log(log(forged)).sessions
    assert session.position is None and session.resumed_from == 2

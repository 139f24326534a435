"""The report page: one self-contained HTML file (inline CSS and JS, images beside it in ``plots/``).

Order, so that 500 tasks stay readable: the summary counts, the tasks that need attention,
the overview figures, the status table (sortable: click a header, or open the page with
``#sort=epoch`` / ``#sort=-attempts``; a filter box hides rows and tasks that do not match),
then one folded ``<details>`` per task with its metric plot, restarts and attempts.

Contract: every string that comes from a task (ids, reasons, hosts, file names in problems)
goes through `html.escape`; the page loads nothing from the network.  Once its script has run,
``<body>`` carries ``data-report-ready="yes"`` (and ``data-js-errors`` counts script errors), so a
headless browser can tell that the page loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from candle_restart.coordinator.report import COLUMNS, cell, row, varied_keys
from candle_restart.report import timeline
from candle_restart.report.collect import Resume, Summary, TaskReport
from candle_restart.report.goodput import PARTS, Breakdown
from candle_restart.report.plots import DPI, STATE_COLORS, TASK_SIZE

ATTENTION_GROUPS = 20  # distinct reasons listed; the table has every task
SORT_KEYS = ("task", "state", "epoch", "best", "attempts", "exit", "job", "ckpt_age", "cause", "reason")

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#212121}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e0e0e0}
.muted{color:#757575}.note{background:#fff8e1;border:1px solid #ffe082;padding:6px 10px}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #e0e0e0;border-radius:6px;padding:6px 12px;min-width:90px}
.card b{display:block;font-size:22px}.chip{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:4px}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eeeeee}
table.sortable th{cursor:pointer;user-select:none;background:#fafafa;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.reason{max-width:420px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
details.task{border:1px solid #eeeeee;border-radius:4px;margin:4px 0;padding:2px 8px}
details.task>summary{cursor:pointer}details.task[open]{background:#fcfcfc}
.problems{color:#b71c1c}figure{margin:6px 0}figcaption{font-size:12px;color:#757575}.overview img{max-width:100%}.scroll{max-height:75vh;overflow:auto;display:inline-block;max-width:100%}input#filter{display:block;margin:4px 0 8px;padding:3px 6px;width:260px}
"""

SCRIPT = """
(function () {
  var body = document.body, errors = 0;
  window.addEventListener("error", function () { body.setAttribute("data-js-errors", String(++errors)); });
  var table = document.getElementById("status-table");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function key(tr, col) {
    var td = tr.cells[col], v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    v = v.trim();
    if (v === "" || v === "-") return [2, 0];
    var n = Number(v);
    return isNaN(n) ? [1, v.toLowerCase()] : [0, n];
  }
  function sortBy(col, desc) {
    var tbody = table.tBodies[0], rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (x[0] !== y[0]) return x[0] - y[0];  /* numbers, then text, then blanks (also when descending) */
      var c = x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
      return desc ? -c : c;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    heads.forEach(function (th, i) {
      th.setAttribute("aria-sort", i === col ? (desc ? "descending" : "ascending") : "none");
    });
    table.setAttribute("data-sorted-by", heads[col].getAttribute("data-key") + (desc ? ":desc" : ":asc"));
  }
  heads.forEach(function (th, i) {
    th.addEventListener("click", function () { sortBy(i, th.getAttribute("aria-sort") === "ascending"); });
  });
  var filter = document.getElementById("filter");
  filter.addEventListener("input", function () {
    var q = filter.value.trim().toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (tr) {
      tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
    });
    document.querySelectorAll("details.task").forEach(function (d) {
      d.hidden = q !== "" && d.querySelector("summary").textContent.toLowerCase().indexOf(q) < 0;
    });
  });
  function fromHash() {
    var m = /^#sort=(-?)([a-z_]+)$/.exec(location.hash);
    if (m) {
      heads.forEach(function (th, i) { if (th.getAttribute("data-key") === m[2]) sortBy(i, m[1] === "-"); });
      return;
    }
    var target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  body.setAttribute("data-report-ready", "yes");
})();
"""


LEGEND = (
    '<p class="muted legend">In each plot: <span style="color:#1e88e5">&#9679;&#8212;</span> the metric at '
    'each epoch end, <span style="color:#546e7a">&#9633;</span> a kept checkpoint, '
    '<span style="color:#fbc02d">&#9733;</span> the best epoch, <span style="color:#e53935">&#8942;</span> a '
    "restart (where training resumed; half an epoch on when it resumed inside an epoch). "
    "Open a task for its plot, restarts and attempts.</p>"
)


def _chip(state: str, text: str | None = None) -> str:
    color = STATE_COLORS.get(state, "#000000")
    return f'<span class="chip" style="background:{color}">{escape(text or state)}</span>'


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _goodput(breakdown: Breakdown | None, plot: str | None) -> str:
    """The page's lead: "goodput N%" and every part's seconds and share of the wall time."""
    if breakdown is None or breakdown.wall <= 0 or breakdown.goodput is None:
        return '<section id="goodput"><h2>goodput: no attempts yet</h2></section>'
    rows = "".join(
        f'<tr data-part="{name}"><td>{name}</td><td>{breakdown.parts[name]:.2f}</td>'
        f"<td>{100 * breakdown.parts[name] / breakdown.wall:.1f}%</td></tr>"
        if name != "queue" or breakdown.queue_wait is not None
        else f'<tr data-part="{name}"><td>{name}</td><td>unknown</td><td>the executor does not say</td></tr>'
        for name in PARTS
    )
    unused = breakdown.halt_unused
    margin = (
        f'<p class="muted" data-halt-unused="{"" if unused is None else f"{unused:.3f}"}">halt margin left unused '
        f"(allocation after halts before the walltime): {'unknown' if unused is None else f'{unused:.1f} s'}</p>"
    )
    image = f'<img src="plots/{escape(plot)}" alt="badput by cause">' if plot else ""
    return (
        f'<section id="goodput"><h2 data-goodput="{breakdown.goodput:.4f}">goodput {100 * breakdown.goodput:.0f}%</h2>'
        f'<p class="muted">productive, kept training over {breakdown.wall:.1f} s of task wall time '
        "(every task's, summed); the rest by cause:</p>"
        f"<table><tr><th>part</th><th>seconds</th><th>share</th></tr>{rows}</table>{margin}{image}</section>"
    )


def _summary(summary: Summary) -> str:
    states = [f'<div class="card" data-count="tasks"><b>{summary.tasks}</b>tasks</div>']
    for state, n in summary.by_state.items():
        states.append(f'<div class="card" data-count="{state}"><b>{n}</b>{_chip(state)}</div>')
    unknown = (
        f'<div class="card" data-count="without_log"><b>{summary.without_log}</b>'
        "task(s) without events.jsonl or ckpt.log: their redone epochs are not counted</div>"
        if summary.without_log
        else ""
    )
    work = [
        ("epochs_trained", "epochs trained", summary.epochs_trained),
        ("epochs_redone", "epochs redone after restarts", summary.epochs_redone),
        ("restarts", "restarts", summary.restarts),
        ("preemptions", "preemptions", summary.preemptions),
        ("failures", "failed attempts", summary.failures),
        ("attempts", "attempts", summary.attempts),
        ("stuck", "stuck", summary.stuck),
    ]
    cards = "".join(f'<div class="card" data-count="{k}"><b>{v}</b>{label}</div>' for k, label, v in work)
    return (
        '<section id="summary"><h2>Summary</h2>'
        f'<div class="cards">{"".join(states)}</div>'
        f'<div class="cards" style="margin-top:8px">{cards}{unknown}</div>'
        '<p class="muted">An epoch is redone when it ends a second time because a restart went back to an '
        "older checkpoint; a task is stuck when its last two restarts resumed from the same epoch.</p>"
        "</section>"
    )


def _why(t: TaskReport) -> str:
    if t.stuck:
        return f"stuck: {t.stuck}"
    if t.problems and t.status.state not in ("failed", "corrupt"):
        return t.problems[0]
    return t.status.reason


def _attention(tasks: Sequence[TaskReport]) -> str:
    """Failed, corrupt, cancelled and stuck tasks and tasks with unreadable files, grouped by reason."""
    flagged = [
        t for t in tasks if t.status.state in ("failed", "corrupt", "cancelled") or t.stuck or t.problems
    ]
    if not flagged:
        return ""
    groups: dict[tuple[str, str], list[TaskReport]] = {}
    for t in flagged:  # the same reason in many tasks reads as one line
        groups.setdefault((t.status.state, _why(t).replace(t.task_id, "<task>")), []).append(t)
    items = []
    for (state, _), members in list(groups.items())[:ATTENTION_GROUPS]:
        links = ", ".join(
            f'<a href="#task-{t.index:05d}"><code>{escape(t.task_id)}</code></a>' for t in members[:5]
        )
        more = f" and {len(members) - 5} more" if len(members) > 5 else ""
        items.append(
            f"<li>{_chip(state)} <b>{len(members)}</b>: {escape(_why(members[0]))}<br>{links}{more}</li>"
        )
    rest = len(groups) - ATTENTION_GROUPS
    tail = f'<p class="muted">and {rest} more reasons (filter the table)</p>' if rest > 0 else ""
    return (
        f'<section id="attention"><h2>Needs attention ({len(flagged)})</h2>'
        f"<ul>{''.join(items)}</ul>{tail}</section>"
    )


def _overview(overview: Sequence[tuple[str, str]], note: str | None) -> str:
    if note:
        return f'<section id="overview"><h2>Metric curves</h2><p class="note">{escape(note)}</p></section>'
    if not overview:
        return ""
    images = "".join(
        f'<p><img src="plots/{escape(f)}" alt="{escape(m)} of every task by epoch"></p>' for m, f in overview
    )
    return (
        '<section id="overview" class="overview"><h2>Metric curves</h2>'
        '<p class="muted">Every task\'s checkpointed metric at each epoch end, coloured by state; '
        f"a dot marks each task's best epoch.</p>{images}</section>"
    )


def _status_table(tasks: Sequence[TaskReport], now: datetime) -> str:
    """The status table, with a column for each parameter that differs between tasks after the task id."""
    params = varied_keys([t.status.params for t in tasks])
    head = "".join(f'<th data-key="{k}">{escape(c)}</th>' for k, c in zip(SORT_KEYS[:1], COLUMNS[:1], strict=True))
    head += "".join(f'<th data-key="param_{escape(k)}" class="param">{escape(k)}</th>' for k in params)
    head += "".join(f'<th data-key="{k}">{escape(c)}</th>' for k, c in zip(SORT_KEYS[1:], COLUMNS[1:], strict=True))
    body = []
    for t in tasks:
        s = t.status
        cells = row(s, now)
        age = s.ckpt_age_seconds(now)
        keys = {2: s.epoch, 3: s.best_metric, 7: None if age is None else round(age)}
        tds = []
        for i, text in enumerate(cells):
            data = f' data-v="{keys[i]}"' if i in keys and keys[i] is not None else ""
            if i == 0:
                tds.append(f'<td><a href="#task-{t.index:05d}">{escape(text)}</a></td>')
                tds += [f'<td class="param">{escape(cell(s.params.get(k), 40))}</td>' for k in params]
            elif i == 1:
                tds.append(f"<td>{_chip(text)}</td>")
            elif i == len(cells) - 1:
                tds.append(f'<td class="reason" title="{escape(s.reason)}">{escape(text)}</td>')
            else:
                tds.append(f"<td{data}>{escape(text)}</td>")
        body.append(f'<tr data-state="{escape(s.state)}">{"".join(tds)}</tr>')
    return (
        '<section id="status"><h2>Status</h2>'
        '<input id="filter" type="search" placeholder="filter: task, state, reason" aria-label="filter">'
        f'<table id="status-table" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></section>"
    )


def _resumed(r: Resume) -> str:
    if r.mid_epoch:
        return f"inside epoch {r.epoch + 1} (a mid-epoch checkpoint)"
    return f"after epoch {r.epoch}" if r.epoch else "from scratch"


def _task(t: TaskReport, plot: str | None, now: datetime) -> str:
    s = t.status
    epoch = "-" if s.epoch is None else f"{s.epoch}/{s.epochs if s.epochs is not None else '?'}"
    best = "" if t.best_epoch is None else f" · best {_number(t.best_value)} at epoch {t.best_epoch}"
    head = (
        f"{_chip(s.state)} <code>{escape(t.task_id)}</code> epoch {epoch}{best} · "
        f"{s.attempts} attempt(s) · {len(t.resumes)} restart(s)"
    )
    parts = [f"<p>{escape(s.reason)}</p>"]
    if s.params:
        shown = ", ".join(f"{k}={cell(v, 80)}" for k, v in s.params.items())
        parts.append(f'<p class="muted">Parameters: <code>{escape(shown)}</code></p>')
    if s.result is not None:
        parts.append(f'<p>Result: <code>{escape(cell(s.result, 400))}</code></p>')
    if t.problems:
        parts.append('<ul class="problems">' + "".join(f"<li>{escape(p)}</li>" for p in t.problems) + "</ul>")
    if t.stuck:
        parts.append(f'<p class="problems">stuck: {escape(t.stuck)}</p>')
    if plot:
        size = f'width="{round(TASK_SIZE[0] * DPI)}" height="{round(TASK_SIZE[1] * DPI)}"'
        metric = escape(t.metric or "metric")
        parts.append(
            f'<figure><img loading="lazy" src="plots/{escape(plot)}" {size} alt="{metric} by epoch">'
            f"<figcaption>{metric} by epoch</figcaption></figure>"
        )
    elif not t.values:
        parts.append('<p class="muted">No checkpointed metric yet.</p>')
    restarts = ", ".join(_resumed(r) for r in t.resumes)
    redone = "not known (no events.jsonl or ckpt.log)" if t.epochs_redone is None else str(t.epochs_redone)
    parts.append(
        f'<p class="muted">Resumed: {restarts or "never"}. Epochs trained: {t.epochs_trained}; '
        f"redone: {redone}. Kept checkpoints: {', '.join(map(str, sorted(t.kept))) or 'none'}.</p>"
    )
    if t.goodput is not None and t.goodput.goodput is not None:
        spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in t.goodput.badput().items())
        parts.append(
            f'<p class="muted" data-goodput="{t.goodput.goodput:.4f}">Goodput {100 * t.goodput.goodput:.0f}% '
            f"of {t.goodput.wall:.1f} s; the rest: {spent or 'none'}.</p>"
        )
    parts.append(timeline.svg(t.attempts, now))
    parts.append(timeline.table(t.attempts))
    return (
        f'<details class="task" id="task-{t.index:05d}" data-state="{escape(s.state)}">'
        f"<summary>{head}</summary>{''.join(parts)}</details>"
    )


def render(
    title: str,
    tasks: Sequence[TaskReport],
    summary: Summary,
    plots: dict[int, str],
    overview: Sequence[tuple[str, str]],
    note: str | None,
    now: datetime | None = None,
    goodput_plot: str | None = None,
    search: str = "",
) -> str:
    """The whole page (``plots``: task index -> PNG name under ``plots/``; ``note``: why there are none;
    ``goodput_plot``: the badput bars' PNG under ``plots/``; ``search``: the search history section,
    `candle_restart.report.searchhistory`)."""
    now = now or datetime.now().astimezone()  # aware, as every time read from a task (parse_time)
    details = "".join(_task(t, plots.get(t.index), now) for t in tasks)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>candle-restart report: {escape(title)}</title>"
        f"<style>{CSS}</style></head>"
        '<body data-report-ready="no">'
        f"<h1>candle-restart report</h1>"
        f'<p class="muted"><code>{escape(title)}</code> · generated {now:%Y-%m-%d %H:%M:%S} · '
        "times in the generating machine's local time</p>"
        + _goodput(summary.goodput, goodput_plot)
        + _summary(summary)
        + _attention(tasks)
        + _overview(overview, note)
        + _status_table(tasks, now)
        + search
        + f'<section id="tasks"><h2>Tasks</h2>{LEGEND}{details or "<p>No tasks.</p>"}</section>'
        + f"<script>{SCRIPT}</script></body></html>\n"
    )

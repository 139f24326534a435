"""The four test tiers, each test's set by rule from what its code refers to (never by hand).

| tier | what its tests may do | make |
| --- | --- | --- |
| ``unit`` | no child process, no TensorFlow or Keras | ``make test-unit`` |
| ``process`` | start processes (runners, ``candle-restart``, mounts of a tmpfs), never TensorFlow | ``make test-fast`` (with unit) |
| ``tf`` | import Keras or TensorFlow, or start a process that trains with them | ``make test`` |
| ``cluster`` | a Slurm cluster, the FUSE fault filesystem, a second host, headless Chromium | ``make test`` |

The rule, first match wins:

1. ``cluster``: the test uses a fixture of `CLUSTER_FIXTURES`, or its code refers to something
   defined in a module of `CLUSTER_SOURCES`.
2. ``tf``: its module imports Keras or TensorFlow (read from the source: the test file's every
   import, then the imports at the top of each module of this repository it imports, transitively);
   or the test starts processes (rule 3) and names a program that does (a module path such as
   ``candle_restart.examples.regression`` or a file ``tests/fixtures/tiny_keras.py`` in its
   strings or its module's docstring, or ``import keras`` in code it hands a child).
3. ``process``: its code refers to something that starts processes: a module or a name defined in
   one of `PROCESS_SOURCES`, or ``os.fork`` and its kin.
4. ``unit``: the rest.

"Its code" is the test function, its fixtures' functions, and every function and class of the
``tests`` package they refer to, followed transitively (names resolved in each function's globals;
library code is judged by the module that defines it, not followed).

``slow`` is set by the same rule on ``tf`` and ``cluster`` (``-m 'not slow'`` is the fast tiers).

Guards (`TierGuard`): a ``unit`` test that starts a process, and a ``unit`` or ``process`` test
that imports TensorFlow or Keras, fails with the reason; a run that selected only those two tiers
fails at its end if either was imported at all (``pytest_sessionfinish`` below). Their child
processes get `NO_FRAMEWORK` first on ``PYTHONPATH`` (see `child_pythonpath`), where importing
either fails with a line naming the tier.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository
TIERS = ("unit", "process", "tf", "cluster")  # in the order `make test` runs them
FAST = ("unit", "process")
FRAMEWORKS = ("tensorflow", "keras")
PROJECT = ("candle_restart", "tests")
NO_FRAMEWORK = ROOT / "tests" / "helpers" / "no_framework"  # fake packages that refuse to import
GUARDED = "CANDLE_RESTART_TEST_TIER"  # set while a unit or process test runs: children refuse TF

TF_DIRECTORIES = ("tests/keras",)  # everything there is about Keras
# A task of a ``command`` is run as a process by ``run_task`` (in-process only for an ``entry``).
PROCESS_KEYWORDS = {"command": "candle_restart.task"}
CLUSTER_FIXTURES = frozenset({"faultfs", "second_host", "slurm_conf"})
CLUSTER_SOURCES = ("tests.faultfs", "tests.helpers.browser")
PROCESS_SOURCES = (
    "subprocess",
    "multiprocessing",
    "concurrent.futures",
    "pty",
    "parsl",
    "tests.helpers.processes",
    "tests.helpers.runroot",
    "candle_restart.cli",
    "candle_restart.views",
    "candle_restart.coordinator.local",
    "candle_restart.coordinator.resume",  # scan asks dmesg whether a dead runner ran out of memory
    "candle_restart.coordinator.retry",
    "candle_restart.parsl",
    "candle_restart.slurm.backend",
    "candle_restart.sweep.run",
    "candle_restart.examples",
    "candle_restart.report.plots",  # many plots are drawn in forked workers
)
OS_SPAWN = frozenset(
    {"fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen", "execv", "execve", "execvp"}
)
_DOTTED = re.compile(r"\b(?:candle_restart|tests)(?:\.\w+)+")
_PATH = re.compile(r"\b(?:candle_restart|tests)(?:/\w+)+\.py\b")
_FROM_IMPORT = re.compile(r"\bfrom\s+((?:candle_restart|tests)[\w.]*)\s+import\s+(\w+)")
_IMPORTS_FRAMEWORK = re.compile(r"\b(?:import|from)\s+(?:tensorflow|keras)\b")


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# -- what a module imports, read from its source ---------------------------------------------


def module_file(name: str) -> Path | None:
    """The file of this repository's module ``name``, or None (not ours, or not there)."""
    if name.split(".")[0] not in PROJECT:
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _top_level(tree: ast.Module) -> Iterator[ast.stmt]:
    """The statements run when the module is imported (not inside functions, not TYPE_CHECKING)."""
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                todo.append(child)


@functools.cache
def imports_of(path: Path, anywhere: bool) -> frozenset[str]:
    """The modules ``path`` imports: at its top level, or ``anywhere`` (inside functions too)."""
    tree = ast.parse(path.read_bytes(), str(path))
    nodes: Iterable[ast.AST] = ast.walk(tree) if anywhere else _top_level(tree)
    package = _package_of(path)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _package_of(path: Path) -> str:
    if not path.resolve().is_relative_to(ROOT):
        return ""  # not ours: its relative imports are not followed
    return ".".join(path.resolve().relative_to(ROOT).parts[:-1])  # a module's and an __init__'s


@functools.cache
def framework_chain(path: Path, anywhere: bool = True) -> list[str] | None:
    """How the module at ``path`` comes to import a framework (the chain of modules), or None.

    ``path``'s own imports are read ``anywhere``; each module of this repository reached from
    them by its top-level imports (and those of the packages above it), transitively."""
    chains: dict[str, tuple[str, ...]] = {name: (name,) for name in sorted(imports_of(path, anywhere))}
    todo = list(chains)
    while todo:
        name = todo.pop(0)
        if name.split(".")[0] in FRAMEWORKS:
            return list(chains[name])
        parts = name.split(".")
        file = module_file(name)
        found = [".".join(parts[:depth]) for depth in range(1, len(parts))]  # its packages run first
        found += sorted(imports_of(file, False)) if file is not None else []
        for imported in found:
            if imported not in chains:
                chains[imported] = (*chains[name], imported)
                todo.append(imported)
    return None


# -- what a test's code refers to ------------------------------------------------------------


@dataclass
class Refs:
    """What a test's code refers to: the defining modules of the objects, attribute names, strings."""

    followed: tuple[str, ...] = ("tests",)  # the code followed into: the tests package, the test's module
    modules: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)
    _seen: set[int] = field(default_factory=set)

    def code(self, code: CodeType, scope: dict[str, Any]) -> None:
        if id(code) in self._seen:
            return
        self._seen.add(id(code))
        self.names.update(code.co_names)
        # a function's own ``import subprocess`` (its module is in no scope): judged like a global one
        self.modules.update(i.argval for i in dis.get_instructions(code) if i.opname == "IMPORT_NAME")
        doc = code.co_consts[0] if code.co_consts and isinstance(code.co_consts[0], str) else None
        for const in code.co_consts:
            if isinstance(const, CodeType):
                self.code(const, scope)
            elif isinstance(const, str) and const is not doc:  # a docstring is no program
                self.strings.add(const)
            elif isinstance(const, tuple):  # a call's keyword names, among others
                self.names.update(part for part in const if isinstance(part, str))
        for name in code.co_names:
            if name in scope:
                self.value(scope[name])

    def value(self, obj: object) -> None:
        if isinstance(obj, str):
            self.strings.add(obj)
            return
        if isinstance(obj, tuple | list | frozenset | set):
            for part in obj:
                if isinstance(part, str):
                    self.strings.add(part)
            return
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        if isinstance(obj, ModuleType):
            self.modules.add(obj.__name__)
            return
        obj = inspect.unwrap(obj) if callable(obj) else obj
        defined = getattr(obj, "__module__", None) or type(obj).__module__
        self.modules.add(defined)
        if not _within(defined, self.followed) or _within(defined, CLUSTER_SOURCES):
            return  # library code: judged by where it is defined
        if inspect.isfunction(obj):
            self.code(obj.__code__, obj.__globals__)
        elif inspect.isclass(obj):
            for attr in vars(obj).values():
                func = attr.__func__ if isinstance(attr, staticmethod | classmethod) else attr
                if inspect.isfunction(func):
                    self.code(func.__code__, func.__globals__)


def refs_of(item: pytest.Function) -> Refs:
    """What ``item``'s function and its fixtures' functions refer to."""
    refs = Refs(followed=("tests", item.module.__name__) if item.module is not None else ("tests",))
    funcs: list[Callable[..., object]] = [item.function]
    for name in item.fixturenames:
        for fixturedef in item._fixtureinfo.name2fixturedefs.get(name, ()):
            funcs.append(fixturedef.func)
    for func in funcs:
        func = inspect.unwrap(func)
        func = getattr(getattr(func, "hypothesis", None), "inner_test", func)  # under @given
        if inspect.isfunction(func):
            refs.code(func.__code__, func.__globals__)
    module = item.module
    if module is not None and module.__doc__:
        refs.strings.add(module.__doc__)
    return refs


def _program_uses_framework(text: str) -> str | None:
    """A program named in ``text`` that imports a framework (its name), or None."""
    if _IMPORTS_FRAMEWORK.search(text):
        return "code that imports a framework"
    names = [m.group(0) for m in _DOTTED.finditer(text)]
    names += [f"{m.group(1)}.{m.group(2)}" for m in _FROM_IMPORT.finditer(text)]
    names += [m.group(0)[: -len(".py")].replace("/", ".") for m in _PATH.finditer(text)]
    for name in names:
        while name.count("."):  # "pkg.mod.func" names "pkg.mod"
            file = module_file(name)
            if file is not None:
                if framework_chain(file) is not None:
                    return name
                break
            name = name.rsplit(".", 1)[0]
    return None


def framework_file(path: Path) -> str | None:
    """Why every test in the file at ``path`` is about a framework (or None): where it lives or
    what it imports."""
    for directory in TF_DIRECTORIES:
        if path.resolve().is_relative_to(ROOT / directory):
            return f"lives in {directory}"
    chain = framework_chain(path)
    return None if chain is None else "its module imports " + " -> ".join(chain)


@dataclass(frozen=True)
class Tier:
    name: str
    why: str


def tier_of(item: pytest.Function) -> Tier:
    """The tier of ``item`` by the rule of this module's docstring, and why."""
    used = CLUSTER_FIXTURES.intersection(item.fixturenames)
    if used:
        return Tier("cluster", f"uses the fixture {sorted(used)[0]}")
    refs = refs_of(item)
    for mod in sorted(refs.modules):
        if _within(mod, CLUSTER_SOURCES):
            return Tier("cluster", f"uses {mod}")
    why = framework_file(Path(str(item.path)))
    if why is not None:
        return Tier("tf", why)
    starts = next((m for m in sorted(refs.modules) if _within(m, PROCESS_SOURCES)), None)
    for keyword, where in PROCESS_KEYWORDS.items():
        if starts is None and keyword in refs.names and any(_within(m, (where,)) for m in refs.modules):
            starts = f"a {keyword} run by {where}"
    if starts is None and "os" in refs.modules and OS_SPAWN & refs.names:
        starts = "os." + sorted(OS_SPAWN & refs.names)[0]
    if starts is None:
        return Tier("unit", "starts no process, imports no framework")
    for text in sorted(refs.strings):
        program = _program_uses_framework(text)
        if program is not None:
            return Tier("tf", f"starts processes ({starts}) running {program}")
    return Tier("process", f"starts processes ({starts})")


SLURM_FIXTURES = frozenset({"slurm_conf"})
FUSE_FIXTURES = frozenset({"faultfs", "second_host"})
FUSE_SOURCES = ("tests.faultfs",)


def xdist_group(item: pytest.Function, tier: Tier) -> str | None:
    """The pytest-xdist group of a test (``--dist loadgroup``: a group runs on one worker, its
    tests one after another), or None (any worker).

    ``cluster``: ``slurm`` (the one Slurm cluster), ``fuse`` (FUSE mounts and the second host), or
    None (Chromium: a fresh profile each), so the Slurm tests, which mostly wait on the scheduler,
    overlap the others.  ``tf``: ``references`` for the tests that share the session's reference
    trainings (each is then trained once), the test's file for one that uses a module-scoped
    fixture (its module's trainings are run once), else None.  ``unit`` and ``process``: None."""
    if tier.name == "tf":
        if "references" in item.fixturenames:
            return "references"
        defs = [d for name in item.fixturenames for d in item._fixtureinfo.name2fixturedefs.get(name, ())]
        return item.nodeid.split("::")[0] if any(d.scope in ("module", "class") for d in defs) else None
    if tier.name != "cluster":
        return None
    if SLURM_FIXTURES.intersection(item.fixturenames):
        return "slurm"
    if FUSE_FIXTURES.intersection(item.fixturenames):
        return "fuse"
    if any(_within(mod, FUSE_SOURCES) for mod in refs_of(item).modules):
        return "fuse"
    return None


def join_group(item: pytest.Item, group: str) -> None:
    """Give ``item`` the node id pytest-xdist's ``--dist loadgroup`` groups by: ``<id>@<group>``.

    xdist's worker writes that id into ``item._nodeid``, which pytest 9.2 no longer reads (the id
    is ``item._id`` there): without this, tests of one ``xdist_group`` run on any worker."""
    grouped = f"{item.nodeid}@{group}"
    try:
        from _pytest.nodeid import coerce_node_id  # pytest >= 9.2
    except ImportError:
        setattr(item, "_nodeid", grouped)  # noqa: B010  (pytest < 9.2: no such attribute in its types)
        return
    item._id = coerce_node_id(grouped)


def file_may_hold(path: Path, markexpr: str) -> bool:
    """Whether a test file may hold a test ``-m markexpr`` selects, judged from its imports alone.

    A file that imports a framework holds only ``tf`` and ``cluster`` tests; not importing it
    when neither is selected keeps TensorFlow out of ``make test-unit`` and ``make test-fast``."""
    from _pytest.mark.expression import Expression

    if not markexpr or framework_file(path) is None:
        return True
    expr = Expression.compile(markexpr)
    if set(re.findall(r"\w+", markexpr)) - {*TIERS, "slow", "and", "or", "not"}:
        return True  # an expression about other marks: no guess
    return any(expr.evaluate(_Marks(tier, "slow")) for tier in ("tf", "cluster"))


class _Marks:
    """The marks a test has, as ``-m``'s expression asks them."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def __call__(self, name: str, /, **kwargs: str | int | bool | None) -> bool:
        return name in self.names


# -- the guards ------------------------------------------------------------------------------


def child_pythonpath() -> str:
    """``PYTHONPATH`` for the tests' child processes: the repository, and while a unit or process
    test runs, `NO_FRAMEWORK` (where ``import tensorflow`` and ``import keras`` fail)."""
    paths = [str(ROOT)]
    if os.environ.get(GUARDED):
        paths.append(str(NO_FRAMEWORK))
    return os.pathsep.join(paths)


class TierGuard:
    """Records the child processes a test starts (subprocess, fork, posix_spawn)."""

    def __init__(self) -> None:
        self.started: list[str] | None = None  # None: not recording
        original = subprocess.Popen._execute_child  # type: ignore[attr-defined]
        guard = self

        def execute_child(popen: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> Any:
            guard.note(args if isinstance(args, str) else " ".join(map(str, args)))
            return original(popen, args, *rest, **kw)

        subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]
        for name in ("fork", "posix_spawn", "posix_spawnp"):
            self._wrap_os(name)

    def _wrap_os(self, name: str) -> None:
        original = getattr(os, name)
        guard = self

        def wrapped(*args: Any, **kw: Any) -> Any:
            guard.note(f"os.{name}")
            return original(*args, **kw)

        setattr(os, name, wrapped)

    def note(self, what: str) -> None:
        if self.started is not None:
            self.started.append(what[:200])


GUARD = TierGuard()


def loaded_frameworks() -> list[str]:
    return sorted(m for m in FRAMEWORKS if m in sys.modules)


def _timeouts() -> dict[str, int]:
    """Per-test timeouts (seconds) by tier: generous for two busy cores; none under ``make torture``."""
    if any(os.environ.get(v) for v in ("CANDLE_RESTART_TORTURE_REPORT", "CANDLE_RESTART_TORTURE_SCALE")):
        return dict.fromkeys(TIERS, 0)
    return {"unit": 300, "process": 300, "tf": 600, "cluster": 900}


TIMEOUTS = _timeouts()

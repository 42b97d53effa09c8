"""runtime.workflow_code: a registered workflow module is compiled once per version of its
source, yet still executed afresh on every import, as the workflow sandbox needs."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import CodeType, ModuleType

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from eventstore import EventStore
from runtime.converter import READING_CONVERTER
from runtime.workflow_code import compile_once, disk_loads
from tests.test_workflow_replay import HISTORIES, load
from worker import build_worker
from workflows import checkpoints, improvement_case

PROBE = '''
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import {counter}

{counter}.EXECUTIONS.append(__name__)  # a side effect of executing the module
VERSION = "{version}"
RUNS: list[int] = []  # module state: one run must never see another's


@workflow.defn(name="{name}")
class Probe:
    @workflow.run
    async def run(self) -> str:
        RUNS.append(1)
        return f"{{VERSION}} {{len(RUNS)}}"
'''


class Probes:
    """Modules written to a temporary directory on sys.path, each with a name of its own (the
    cache and the registrations are process-wide), and a passthrough module that counts how
    many times each probe was executed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counter = f"probe_counter_{uuid.uuid4().hex[:8]}"
        (directory / f"{self.counter}.py").write_text("EXECUTIONS: list[str] = []\n")
        self.names = [self.counter]

    def write(self, version: str = "v1", name: str | None = None) -> str:
        """Write (or rewrite, with a later mtime) a probe module; its name."""
        name = name or f"probe_{uuid.uuid4().hex[:8]}"
        path = self.directory / f"{name}.py"
        before = path.stat().st_mtime_ns if path.exists() else None
        path.write_text(PROBE.format(counter=self.counter, version=version, name=name))
        if before is not None:  # a later mtime even on a filesystem with coarse timestamps
            os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))
        importlib.invalidate_caches()
        self.names.append(name)
        return name

    def path(self, name: str) -> str:
        return str(self.directory / f"{name}.py")

    def executions(self, name: str) -> int:
        return importlib.import_module(self.counter).EXECUTIONS.count(name)  # type: ignore[no-any-return]

    def fresh_import(self, name: str) -> ModuleType:
        """Import `name` anew, as the sandbox does for each run: not from sys.modules."""
        sys.modules.pop(name, None)
        return importlib.import_module(name)


@pytest.fixture
def probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Probes]:
    monkeypatch.syspath_prepend(str(tmp_path))
    made = Probes(tmp_path)
    yield made
    for name in made.names:
        sys.modules.pop(name, None)


def test_a_registered_module_is_compiled_once_and_executed_on_every_import(
        probes: Probes) -> None:
    name = probes.write()
    compile_once(name)
    modules = [probes.fresh_import(name) for _ in range(3)]
    assert disk_loads(probes.path(name)) == 1
    assert probes.executions(name) == 3
    assert len({id(module) for module in modules}) == 3
    assert len({id(module.RUNS) for module in modules}) == 3  # no state shared between them
    assert len({id(module.Probe.run.__code__) for module in modules}) == 1  # one compiled code


def test_an_edited_module_is_compiled_again_and_its_new_code_runs(probes: Probes) -> None:
    name = probes.write("v1")
    compile_once(name)
    assert probes.fresh_import(name).VERSION == "v1"
    assert probes.fresh_import(name).VERSION == "v1"
    assert disk_loads(probes.path(name)) == 1
    probes.write("v2", name)
    assert probes.fresh_import(name).VERSION == "v2"
    assert probes.fresh_import(name).VERSION == "v2"
    assert disk_loads(probes.path(name)) == 2
    assert probes.executions(name) == 4


def test_an_unregistered_module_keeps_the_ordinary_loader(probes: Probes) -> None:
    registered, other = probes.write(), probes.write()
    compile_once(registered)
    for _ in range(2):
        probes.fresh_import(registered)
        module = probes.fresh_import(other)
        assert type(module.__loader__) is importlib.machinery.SourceFileLoader
    assert type(sys.modules[registered].__loader__) is not importlib.machinery.SourceFileLoader
    assert disk_loads(probes.path(other)) == 0
    assert probes.executions(other) == 2


def test_a_registered_modules_parent_packages_are_compiled_once_too(
        probes: Probes) -> None:
    """The sandbox imports a workflow module's packages afresh with it: their __init__ is
    served from memory as well."""
    package = f"probe_package_{uuid.uuid4().hex[:8]}"
    (probes.directory / package).mkdir()
    init = probes.directory / package / "__init__.py"
    init.write_text(f"import {probes.counter}\n{probes.counter}.EXECUTIONS.append(__name__)\n")
    (probes.directory / package / "probe.py").write_text("VALUE = 1\n")
    importlib.invalidate_caches()
    probes.names += [package, f"{package}.probe"]
    compile_once(f"{package}.probe")
    for _ in range(3):
        sys.modules.pop(f"{package}.probe", None)
        sys.modules.pop(package, None)
        assert importlib.import_module(f"{package}.probe").VALUE == 1
    assert disk_loads(init) == 1
    assert disk_loads(probes.directory / package / "probe.py") == 1
    assert probes.executions(package) == 3


def test_registering_again_installs_no_second_finder(probes: Probes) -> None:
    name = probes.write()
    compile_once(name)
    before = list(sys.meta_path)
    compile_once(name)
    compile_once(name, probes.write())
    assert sys.meta_path == before
    assert sum(type(f).__module__ == "runtime.workflow_code" for f in sys.meta_path) == 1


def test_runs_starting_together_in_threads_compile_once(probes: Probes) -> None:
    name = probes.write()
    compile_once(name)
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    loader = spec.loader
    start = threading.Barrier(8)
    codes: list[CodeType | None] = []

    def load() -> None:
        start.wait()
        codes.append(loader.get_code(name))  # type: ignore[attr-defined]

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(codes) == 8 and len({id(code) for code in codes}) == 1
    assert disk_loads(probes.path(name)) == 1


async def test_the_sandbox_runs_each_workflow_in_a_fresh_module_compiled_once(
        probes: Probes, time_skipping_env: WorkflowEnvironment) -> None:
    """Through the SDK's own sandbox: each run executes the module anew (its state starts
    empty), from one compiled code until the source changes."""
    name = probes.write("v1")
    compile_once(name)
    probe = probes.fresh_import(name).Probe
    client = time_skipping_env.client
    task_queue = f"probe-{uuid.uuid4().hex[:8]}"

    async def run_one() -> str:
        return await client.execute_workflow(  # type: ignore[no-any-return]
            probe.run, id=f"{task_queue}-{uuid.uuid4().hex[:8]}", task_queue=task_queue)

    async with Worker(client, task_queue=task_queue, workflows=[probe],
                      workflow_runner=SandboxedWorkflowRunner()):
        executed = probes.executions(name)
        assert [await run_one(), await run_one()] == ["v1 1", "v1 1"]
        assert probes.executions(name) == executed + 2
        assert disk_loads(probes.path(name)) == 1
        probes.write("v2", name)
        assert [await run_one(), await run_one()] == ["v2 1", "v2 1"]
        assert disk_loads(probes.path(name)) == 2


async def test_the_engines_worker_registers_its_workflow_modules(
        time_skipping_env: WorkflowEnvironment, sqlite_store: EventStore) -> None:
    """build_worker registers them (its sandbox check of each workflow loads the code), and
    replays in the real sandbox reuse that code."""
    build_worker(time_skipping_env.client, sqlite_store, f"cases-{uuid.uuid4().hex[:8]}")
    for module in (improvement_case, checkpoints):
        assert module.__file__ is not None
        assert disk_loads(module.__file__) >= 1, module.__name__
    assert improvement_case.__file__ is not None
    loaded = disk_loads(improvement_case.__file__)
    replayer = Replayer(workflows=[improvement_case.ImprovementCase],
                        data_converter=READING_CONVERTER)
    for path in HISTORIES[:2]:
        result = await replayer.replay_workflow(await load(path))
        assert result.replay_failure is None
    assert disk_loads(improvement_case.__file__) == loaded


SANDBOX_READS = '''
import asyncio, os, sys
from temporalio.worker import Replayer
from runtime.converter import READING_CONVERTER
from runtime.process import exit_now
from runtime.workflow_code import compile_once
from tests.test_workflow_replay import HISTORIES, load
from workflows.improvement_case import ImprovementCase

ROOT = os.path.realpath(".") + os.sep
read: list[str] = []


def hook(event: str, args: tuple[object, ...]) -> None:
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(ROOT):
        read.append(args[1])
    elif event == "open" and isinstance(args[0], str) and args[0].startswith(ROOT) \\
            and args[0].endswith((".py", ".pyc")):
        read.append(args[0])


async def main() -> None:
    compile_once(ImprovementCase.__module__)
    replayer = Replayer(workflows=[ImprovementCase], data_converter=READING_CONVERTER)
    histories = [await load(path) for path in HISTORIES]
    for history in histories:  # the first case loads what it must
        assert (await replayer.replay_workflow(history)).replay_failure is None
    sys.addaudithook(hook)
    for history in histories:
        assert (await replayer.replay_workflow(history)).replay_failure is None
    print("\\n".join(sorted(set(os.path.relpath(path) for path in read))))


asyncio.run(main())
exit_now(0)  # as the engine's processes leave: the SDK's threads can crash a finalising interpreter
'''


def test_a_new_case_reads_none_of_the_engines_source_files() -> None:
    """Once the worker has run one case, a new case's sandbox compiles and reads nothing of
    ours from disk: its own module and packages come from memory, everything it imports is
    passed through (a `from package import module` would slip past the passthrough and be
    compiled again for every case)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", SANDBOX_READS], cwd=root, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
                               "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []

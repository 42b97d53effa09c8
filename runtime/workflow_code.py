"""Compile a workflow module's source once per process, not once per workflow run.

Temporal's workflow sandbox imports a workflow's own module afresh for every new run, to
isolate the run's state (temporalio/worker/workflow_sandbox/_importer.py). Its imports go
through the host's `sys.meta_path`, so each run asks the ordinary loader for the module's code;
with no `.pyc` on disk (PYTHONDONTWRITEBYTECODE=1) that is a fresh `compile()` of the source
every time: about 5 ms for workflows/improvement_case.py.

`compile_once(name, …)` keeps, for the named modules and their parent packages only (the
sandbox re-imports a workflow module's packages with it), the code object in memory, keyed by
the source file's path, modification time (ns) and size, which is what a `.pyc` would give:
the module is still executed afresh in each run's own namespace, and an edited file is
compiled again. Every other module, and everything else the sandbox does, is untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Sequence
from types import CodeType, ModuleType

__all__ = ["compile_once", "disk_loads"]

_lock = threading.Lock()
_registered: frozenset[str] = frozenset()
_code: dict[str, tuple[int, int, CodeType]] = {}
"""Source path -> (st_mtime_ns, st_size, code) of the version last loaded from disk."""
_loads: dict[str, int] = {}
"""Source path -> how many times its code was loaded from disk (compiled, or read from a .pyc)."""


class _CachedSourceLoader(importlib.machinery.SourceFileLoader):
    """A SourceFileLoader whose code comes from memory while the source file is unchanged."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        stat = os.stat(path)
        with _lock:  # one load per version, even when runs in several threads start together
            cached = _code.get(path)
            if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
                return cached[2]
            code = super().get_code(fullname)
            if code is None:  # typeshed allows it; a source file always has code
                raise ImportError(f"no code for {fullname} in {path}", name=fullname)
            _code[path] = (stat.st_mtime_ns, stat.st_size, code)
            _loads[path] = _loads.get(path, 0) + 1
            return code


class _CompileOnceFinder(importlib.abc.MetaPathFinder):
    """First on `sys.meta_path`: for a registered module, finds its spec as the other finders
    would, and gives a plain source file the caching loader; for anything else, stays out."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _registered:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _CompileOnceFinder):
                continue  # the finders before it have declined already; asking again is harmless
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                return None  # a legacy finder: leave the search to the import system
            spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if type(loader) is importlib.machinery.SourceFileLoader:
                spec.loader = _CachedSourceLoader(loader.name, loader.path)
            return spec
        return None


_finder = _CompileOnceFinder()


def compile_once(*module_names: str) -> None:
    """Keep the compiled code of these modules (e.g. a workflow class's `__module__`) and of
    their parent packages in memory for this process: the sandbox re-imports a workflow
    module's packages with it. Idempotent: the finder is installed once, in front of
    `sys.meta_path`."""
    global _registered
    with_packages = frozenset(name.rsplit(".", depth)[0] for name in module_names
                              for depth in range(name.count(".") + 1))
    with _lock:
        _registered = _registered | with_packages
        if not any(finder is _finder for finder in sys.meta_path):
            sys.meta_path.insert(0, _finder)


def disk_loads(path: str | os.PathLike[str]) -> int:
    """How many times the code of the source file at `path` was loaded from disk (compiled, or
    read from a `.pyc`) by a registered module's import: once per version of the file."""
    with _lock:
        return _loads.get(os.fspath(path), 0)

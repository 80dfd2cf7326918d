"""Compiled scoring: the model's trees as machine code, built once per model and cached under FPI_HOME.

Why: `Booster.predict` walks ~2,800 trees node by node through generic data
structures; the same forest compiled to straight-line code scores 100k turns
about ten times faster. The code generator is lleaves (LightGBM text model ->
LLVM IR); llvmlite (already here for numba/shap) optimises it with LLVM's new
pass manager and emits a native object file. No C compiler is needed at run time.

Cache layout, one folder per (model sha256, CPU target):
`FPI_HOME/compiled/<model sha256>-<target key>/` with `forest.o` (the object code)
and `build.json` (the model sha256, the object's sha256, the target, versions, build
time). A folder is built in a temp dir beside it and renamed into place, so readers
never see half a build, and two builders cannot both win.

Loading never runs code it has not checked: the object's bytes are read once, their
sha256 compared with the one `build.json` recorded at build time, and those same bytes
(not the file again) are handed to LLVM's in-memory linker. A folder that is group- or
world-writable or owned by someone else is refused outright.

Everything here is optional: when lleaves or llvmlite is missing or too old, or the
build fails, `CompiledScoring` says why and the model scores with `Booster.predict`.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fpi.errors import ModelError

log = logging.getLogger(__name__)

CACHE_DIRNAME = "compiled"
OBJECT_FILE = "forest.o"
BUILD_FILE = "build.json"
ENTRY = "forest_root"
FORMAT = 1
"""Bumped when the generated code's calling convention or the cache layout changes."""
MIN_ROWS_PER_THREAD = 5_000
"""Below this many rows per thread, threads cost more than they save."""
CHUNK_ROWS = 2_048
"""Rows of a column-major matrix copied to row-major at a time (1.5 MB of 90 features: stays in cache)."""

_llvm_lock = threading.Lock()
"""LLVM's global setup and code generation are not meant to run concurrently in one process."""

_ENTRY_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double), ctypes.c_int32, ctypes.c_int32,
)
"""forest_root(rows, out, start, end): raw scores of rows [start, end); ctypes drops the GIL while it runs."""
_DOUBLES = ctypes.POINTER(ctypes.c_double)


def unavailable_reason() -> str | None:
    """Why compiled scoring cannot work in this process, or None when it can."""
    try:
        import llvmlite
        import llvmlite.binding as llvm
        from lleaves.compiler.ast import parse_to_ast  # noqa: F401
        from lleaves.compiler.codegen import gen_forest  # noqa: F401
    except ImportError as exc:
        return f"the compiler packages are not installed ({exc}); `pip install -r requirements.txt` adds them"
    if not hasattr(llvm, "create_pass_builder"):
        return f"llvmlite {llvmlite.__version__} predates LLVM's new pass manager (needs >= 0.44)"
    return None


def _llvm() -> Any:
    import llvmlite.binding as llvm

    with _llvm_lock:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
    return llvm


def _target_machine(llvm: Any, opt: int = 1) -> Any:
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot always tell; plain code for the CPU name is still right
        features = ""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    # The large code model: a forest of thousands of trees outgrows the small model's 2 GB offsets assumptions.
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=features, reloc="pic",
                                        codemodel="large", opt=opt)


def target_description() -> dict[str, str]:
    """What the object code is specialised for: code built for one CPU may crash on another."""
    from importlib.metadata import version

    import llvmlite

    llvm = _llvm()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:
        features = ""
    return {
        "triple": llvm.get_process_triple(),
        "cpu": llvm.get_host_cpu_name(),
        "features": features,
        "llvmlite": llvmlite.__version__,
        "lleaves": version("lleaves"),
        "format": str(FORMAT),
    }


def _target_key(target: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(target, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir(home: Path, model_sha256: str, target: dict[str, str] | None = None) -> Path:
    """The folder one model's compiled forest lives in, for this machine's CPU."""
    if len(model_sha256) != 64 or any(c not in "0123456789abcdef" for c in model_sha256):
        raise ModelError(f"'{model_sha256}' is not a model sha256")
    return Path(home) / CACHE_DIRNAME / f"{model_sha256}-{_target_key(target or target_description())}"


class CompiledForest:
    """A loaded compiled forest: raw scores (as `Booster.predict(raw_score=True)`) for a float64 matrix."""

    def __init__(self, engine: Any, function: Callable[..., None], n_features: int, n_classes: int,
                 build: dict[str, Any]) -> None:
        self._engine = engine  # keeps the code mapped: the function pointer dies with it
        self._function = function
        self.n_features = n_features
        self.n_classes = n_classes
        self.build = build
        """The `build.json` it was loaded with (sha256s, target, seconds)."""

    def raw_scores(self, matrix: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        """(rows, classes) raw scores; rows are split over threads (the call releases the GIL).

        The code reads row-major rows. A column-major matrix (what `build_features` makes) is copied
        into a small row-major buffer per thread, `CHUNK_ROWS` rows at a time: copying all of it
        at once into fresh memory cost ~0.2 s on 100k turns, mostly in page faults.
        """
        data = np.asarray(matrix, dtype=np.float64)  # no copy of a float64 matrix, whatever its order
        if data.ndim != 2 or data.shape[1] != self.n_features:
            raise ModelError(f"the compiled forest reads {self.n_features} features, got a matrix of shape {data.shape}")
        rows = data.shape[0]
        if rows >= 2**31 - 1:
            raise ModelError(f"{rows:,} rows in one call overflow the compiled forest's int32 row index")
        out = np.zeros((rows, self.n_classes), dtype=np.float64)
        if rows == 0:
            return out
        workers = max(1, min(threads or os.cpu_count() or 1, rows // MIN_ROWS_PER_THREAD))
        step = math.ceil(rows / workers)
        if workers == 1:
            self._score(data, out, 0, rows)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda start: self._score(data, out, start, min(start + step, rows)),
                              range(0, rows, step)))
        return out if self.n_classes > 1 else out[:, 0]

    def _score(self, data: np.ndarray, out: np.ndarray, start: int, end: int) -> None:
        """Raw scores of rows [start, end) of `data` into the same rows of `out`."""
        if data.flags.c_contiguous:
            self._function(data.ctypes.data_as(_DOUBLES), out.ctypes.data_as(_DOUBLES), start, end)
            return
        buffer = np.empty((min(CHUNK_ROWS, end - start), self.n_features), dtype=np.float64)
        for low in range(start, end, CHUNK_ROWS):
            high = min(low + CHUNK_ROWS, end)
            buffer[: high - low] = data[low:high]
            self._function(buffer.ctypes.data_as(_DOUBLES), out[low:high].ctypes.data_as(_DOUBLES), 0, high - low)


def build(model_text: str, model_sha256: str, home: Path) -> Path:
    """Compile a LightGBM text model into the cache (atomically); returns its folder.

    `model_sha256` is the key the caller vouches for (the sha256 of the model file it
    loaded `model_text` from). If another process finished the same build first, its
    folder is kept and this one's is dropped.
    """
    reason = unavailable_reason()
    if reason:
        raise ModelError(f"cannot compile the model: {reason}")
    target = target_description()
    final = cache_dir(home, model_sha256, target)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.build-", dir=final.parent))
    try:
        staging.chmod(0o755)
        started = time.perf_counter()
        source = staging / "model.txt"
        source.write_text(model_text, encoding="utf-8")
        obj = _compile(source)
        source.unlink()
        (staging / OBJECT_FILE).write_bytes(obj)
        (staging / OBJECT_FILE).chmod(0o644)
        record = {
            "model_sha256": model_sha256,
            "object_sha256": hashlib.sha256(obj).hexdigest(),
            "object_bytes": len(obj),
            "target": target,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 2),
            "python": platform.python_version(),
        }
        with open(staging / BUILD_FILE, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        (staging / BUILD_FILE).chmod(0o644)
        try:
            os.rename(staging, final)  # a directory rename fails if `final` exists: the first build wins
        except OSError:
            if not (final / BUILD_FILE).is_file():
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def build_in_child(model_text: str, model_sha256: str, home: Path) -> Path:
    """`build` in a child process, which the app's threads do not wait on.

    lleaves generates the code in Python: built in the app's process, it held the
    interpreter lock for most of the three minutes it takes for the shipped model,
    and the first screen of a fresh install took 161 s (12 s with the build here).
    """
    # The child imports what this process can (the app may have found fpi through its own folder, not an install).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-m", "fpi.model.compiled", model_sha256, str(home)], input=model_text,
                          text=True, capture_output=True, check=False, env=env)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise ModelError(lines[-1] if lines else f"the compiler process ended with code {done.returncode}")
    return cache_dir(home, model_sha256, target_description())


def _compile(model_file: Path) -> bytes:
    """lleaves' code generator, optimised with LLVM's new pass manager, emitted as a native object file."""
    import llvmlite.ir
    from lleaves.compiler.ast import parse_to_ast
    from lleaves.compiler.codegen import gen_forest

    llvm = _llvm()
    forest = parse_to_ast(str(model_file))
    forest.raw_score = True  # the model applies its own temperature and softmax
    ir = llvmlite.ir.Module(name="forest")
    gen_forest(forest, ir, 34, ENTRY, True)  # 34 trees per cache block, float64 (lleaves' defaults)
    ir.triple = llvm.get_process_triple()
    with _llvm_lock:
        module = llvm.parse_assembly(str(ir))
        module.verify()
        machine = _target_machine(llvm)
        # -O1 in both halves: on the shipped model (2,808 trees) the code is as fast as -O2/-O3's (1.9 s for
        # 99k turns each) and builds several times sooner (146 s against 660 s on a busy 2-core machine).
        tuning = llvm.create_pipeline_tuning_options(speed_level=1)
        passes = llvm.create_pass_builder(machine, tuning)
        passes.getModulePassManager().run(module, passes)
        return bytes(machine.emit_object(module))


def load(home: Path, model_sha256: str, *, n_features: int, n_classes: int) -> CompiledForest | None:
    """The cached compiled forest of this model for this CPU; None when none was built.

    Raises `ModelError` when a build is there but may not be loaded (tampered with,
    writable by others, for another model), so the caller can say why it scores
    with the interpreted booster.
    """
    folder = cache_dir(home, model_sha256)
    record_path = folder / BUILD_FILE
    if not record_path.is_file():
        return None
    _check_private(folder)
    _check_private(record_path)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{BUILD_FILE} is not valid JSON ({exc})", path=str(folder)) from exc
    if record.get("model_sha256") != model_sha256:
        raise ModelError(f"{BUILD_FILE} was built for another model ({record.get('model_sha256')})", path=str(folder))
    obj_path = folder / OBJECT_FILE
    if not obj_path.is_file():
        raise ModelError(f"{OBJECT_FILE} is missing", path=str(folder))
    _check_private(obj_path)
    data = obj_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != record.get("object_sha256"):
        raise ModelError(f"{OBJECT_FILE} does not match the sha256 recorded when it was built; refusing to load "
                         "it (delete the folder to rebuild)", path=str(folder))
    llvm = _llvm()
    with _llvm_lock:
        machine = _target_machine(llvm)
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
        engine.add_object_file(llvm.ObjectFileRef.from_data(data))  # the checked bytes, not the file again
        engine.finalize_object()
        address = engine.get_function_address(ENTRY)
    if not address:
        raise ModelError(f"{OBJECT_FILE} has no {ENTRY} function", path=str(folder))
    return CompiledForest(engine, _ENTRY_TYPE(address), n_features, n_classes, record)


def _check_private(path: Path) -> None:
    """Refuse code that someone other than its owner (us or root) could have swapped in."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise ModelError("is a symbolic link; refusing to load compiled code through it", path=str(path))
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ModelError("is writable by group or others; refusing to load compiled code from it", path=str(path))
    if hasattr(os, "getuid") and info.st_uid not in (os.getuid(), 0):
        raise ModelError(f"is owned by uid {info.st_uid}, not by this user; refusing to load compiled code from it",
                         path=str(path))


@dataclass(frozen=True)
class Status:
    """Where a model's compiled scoring stands, for the Model page and the CLI."""

    state: str
    """'ready', 'building', 'not built', 'off' or 'unavailable'."""
    reason: str = ""
    build_seconds: float | None = None

    def describe(self) -> str:
        """One sentence for people: how turns are scored now, and why not faster."""
        if self.state == "ready":
            took = f" (compiled once in {self.build_seconds:.0f} s)" if self.build_seconds is not None else ""
            return f"compiled trees{took}"
        if self.state == "building":
            return "LightGBM (interpreted) while the compiled trees are built in the background"
        if self.state == "not built":
            return "LightGBM (interpreted): the compiled trees are not built yet (`fpi compile` builds them once)"
        return f"LightGBM (interpreted): {self.reason}"


class CompiledScoring:
    """One model's compiled scoring: found in the cache, built (in the background if asked), or why not.

    `forest()` is cheap after the first call and never raises: without a usable
    compiled forest it returns None and the caller scores with the booster.
    """

    def __init__(self, *, model_text: Callable[[], str], model_sha256: str, home: Path,
                 n_features: int, n_classes: int, enabled: bool = True,
                 then: CompiledScoring | None = None) -> None:
        self._model_text = model_text
        self.then = then
        """Built next, in the same thread (the model's raw-confidence baseline after the model)."""
        self.model_sha256 = model_sha256
        self.home = Path(home)
        self._shape = dict(n_features=n_features, n_classes=n_classes)
        self._lock = threading.Lock()
        self._forest: CompiledForest | None = None
        self._thread: threading.Thread | None = None
        self._looked = False
        self._status = Status("not built")
        if not enabled:
            self._status, self._looked = Status("off", "compiled scoring is switched off (FPI_COMPILED=0)"), True
        elif not model_sha256:
            self._status, self._looked = Status("unavailable", "the model has not been saved, so it has no sha256 to "
                                                "key a compiled build by"), True
        elif (reason := unavailable_reason()) is not None:
            self._status, self._looked = Status("unavailable", reason), True
            log.info("scoring model %s with the interpreted booster: %s", model_sha256[:12], reason)

    @property
    def status(self) -> Status:
        self.forest()
        return self._status

    def forest(self) -> CompiledForest | None:
        """The compiled forest if one is built and loads; looks in the cache once."""
        if self._forest is not None or self._looked:
            return self._forest
        with self._lock:
            if not self._looked and (self._thread is None or not self._thread.is_alive()):
                self._looked = True
                self._try_load()
        return self._forest

    def _try_load(self) -> None:
        try:
            forest = load(self.home, self.model_sha256, **self._shape)
        except (ModelError, OSError, RuntimeError) as exc:
            self._status = Status("unavailable", f"not loading the compiled build: {exc}")
            log.warning("scoring model %s with the interpreted booster: %s", self.model_sha256[:12], exc)
            return
        if forest is None:
            self._status = Status("not built")
            return
        self._forest = forest
        self._status = Status("ready", build_seconds=forest.build.get("build_seconds"))

    def build(self, *, background: bool = False) -> Status:
        """Compile unless built or impossible; in a daemon thread when `background` (scoring goes on meanwhile)."""
        current = self.status
        if current.state != "not built":  # ready, building, off, or impossible (and why)
            if current.state == "ready" and self.then is not None:
                self.then.build(background=background)
            return current
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self._status
            self._status = Status("building")
            self._thread = threading.Thread(target=self._build, name=f"fpi-compile-{self.model_sha256[:12]}",
                                            daemon=True)
            self._thread.start()
        if not background:
            self._thread.join()
        return self._status

    def wait(self, timeout: float | None = None) -> Status:
        """Block until a background build ends (or `timeout` seconds pass)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._status

    def _build(self) -> None:
        try:
            build_in_child(self._model_text(), self.model_sha256, self.home)
        except Exception as exc:  # a failed build must never break scoring: say why and stay interpreted
            log.warning("could not compile model %s; scoring with the interpreted booster: %s",
                        self.model_sha256[:12], exc)
            self._status = Status("unavailable", f"compiling failed: {exc}")
            return
        self._try_load()
        if self.then is not None:
            self.then.build()


if __name__ == "__main__":  # `build_in_child`: the model text on stdin; MODEL_SHA256 HOME as arguments
    try:
        build(sys.stdin.read(), sys.argv[1], Path(sys.argv[2]))
    except Exception as exc:
        sys.exit(f"{type(exc).__name__}: {exc}")

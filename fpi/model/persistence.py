"""A model directory on disk: what it holds, writing it atomically, and reading it back checked.

A model directory holds only data, never code, so loading one cannot run anything:
- `model.txt`         LightGBM's own text format (the full model)
- `baseline_raw.txt`  LightGBM on the five raw confidences (a baseline, for comparison)
- `meta.json`         contract version, classes, feature spec, rule-cascade thresholds,
                      temperature, training data fingerprint, metrics, library
                      versions and the sha256 of both model files.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, NoReturn

import lightgbm as lgb
import numpy as np
import pandas as pd

from fpi.data.schema import CONTRACT_VERSION, LABELS
from fpi.errors import ModelError
from fpi.model.baselines import RuleCascade
from fpi.model.features import FeatureSpec
from fpi.model.text_stack import TextStack
from fpi.model.training import TrainConfig


MODEL_FILE = "model.txt"
BASELINE_FILE = "baseline_raw.txt"
TEXT_TERMS_FILE = "text_terms.json"
TEXT_ARRAYS_FILE = "text_models.npz"
REFERENCE_FILE = "reference.npz"
META_FILE = "meta.json"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


LOAD_CHECK_SECONDS = 300.0


def load_problem(directory: str | Path, *, timeout: float = LOAD_CHECK_SECONDS) -> str | None:
    """Why the model in `directory` cannot be loaded, or None when it loads.

    The load runs in a child process: a crafted `model.txt` can abort or crash LightGBM's
    parser, and that must cost a child, not the app serving everyone. Used before activating.
    """
    code = ("import sys\nfrom fpi.errors import FpiError\nfrom fpi.model.estimator import FailurePointModel\n"
            "try:\n    FailurePointModel.load(sys.argv[1])\n"
            "except FpiError as exc:\n    print(exc, end='')\n    sys.exit(3)\n")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(directory)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "PYTHONPATH": _package_root()})
    except subprocess.TimeoutExpired:
        return f"loading the model took more than {timeout:.0f} s"
    if done.returncode == 0:
        return None
    if done.returncode == 3:
        return done.stdout.strip() or "the model could not be loaded"
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    return f"loading the model failed (exit status {done.returncode}: {last[:300]})"


def _package_root() -> str:
    """The folder holding the `fpi` package, first on the child's path, so it loads this very fpi."""
    root = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    return root if not rest else os.pathsep.join([root, rest])


def _check_meta(meta: Any, path: Path) -> None:
    """Every field `load` reads, checked for type and value before use: a hand-edited meta.json
    is refused with the field and the fix, never a traceback or a model that answers NaN."""
    def bad(field: str, expected: str) -> NoReturn:
        raise ModelError(f"{META_FILE} field '{field}' must be {expected}; restore the file or retrain the model",
                         path=str(path))

    if not isinstance(meta, dict):
        bad("(top level)", "an object")
    temperature = meta.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and 0.01 <= temperature <= 100):
        bad("temperature", "a number between 0.01 and 100")
    config = meta.get("train_config", {})
    known = {f.name: f.type for f in fields(TrainConfig)}
    if not isinstance(config, dict) or not set(config) <= set(known):
        bad("train_config", f"an object with only the keys {', '.join(known)}")
    defaults = TrainConfig()
    for key, value in config.items():
        default = getattr(defaults, key)
        expected = ((str, type(None)) if default is None else (bool,) if isinstance(default, bool)
                    else (int,) if isinstance(default, int) else (int, float))
        if not isinstance(value, expected) or (isinstance(value, bool) and not isinstance(default, bool)) or (
                isinstance(value, float) and not math.isfinite(value)):
            bad(f"train_config.{key}", "a " + " or ".join(t.__name__ for t in expected if t is not type(None)))
    spec = meta.get("feature_spec")
    if not isinstance(spec, dict):
        bad("feature_spec", "an object")
    for key in ("features", "categorical", "stage_signals"):
        if not isinstance(spec.get(key), list) or not all(isinstance(v, str) for v in spec[key]):
            bad(f"feature_spec.{key}", "a list of names")
    for key, kind in (("levels", "a list of names"), ("reference_quantiles", "a list of numbers"),
                      ("cascade_thresholds", "a number")):
        value = spec.get(key)
        if not isinstance(value, dict):
            bad(f"feature_spec.{key}", "an object")
        for name, item in value.items():
            ok = (isinstance(item, list) and all(isinstance(v, str) for v in item) if key == "levels" else
                  isinstance(item, list) and all(_is_number(v) for v in item) if key == "reference_quantiles" else
                  _is_number(item))
            if not ok:
                bad(f"feature_spec.{key}.{name}", kind)
    thresholds = meta.get("rule_cascade_thresholds", {})
    if not isinstance(thresholds, dict) or not all(_is_number(v) for v in thresholds.values()):
        bad("rule_cascade_thresholds", "an object of numbers")
    for key in [k for k in meta if k.endswith("_sha256")]:
        if not isinstance(meta[key], str):
            bad(key, "a hex digest")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked(file: Path, expected_sha: str | None, path: Path) -> bytes:
    """The file's bytes, if they are the ones `meta.json` vouches for: what is checked is what is read."""
    if not file.is_file():
        raise ModelError(f"{file.name} is missing", path=str(path))
    data = file.read_bytes()
    if not expected_sha or hashlib.sha256(data).hexdigest() != expected_sha:
        raise ModelError(
            f"{file.name} does not match the sha256 in {META_FILE}: the file was changed after saving; "
            "refusing to load it (retrain or restore the original)", path=str(path),
        )
    return data


def _load_npz(file: Path, expected_sha: str | None, path: Path) -> dict[str, np.ndarray]:
    data = _checked(file, expected_sha, path)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:  # numbers only: never unpickle
            return {key: arrays[key] for key in arrays.files}
    except (ValueError, OSError) as exc:
        raise ModelError(f"{file.name} is not a valid array file ({exc})", path=str(path)) from exc


def _load_booster(file: Path, expected_sha: str | None, path: Path) -> lgb.Booster:
    data = _checked(file, expected_sha, path)
    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise ModelError(f"{file.name} is not a LightGBM model ({exc})", path=str(path)) from exc


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=_json_default)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _json_default(value: object) -> object:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _swap_in(staging: Path, target: Path) -> None:
    """Replace `target` by `staging` with renames only; the old one survives until the new is in place."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
    os.replace(target, retired)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def fpi_version() -> str:
    from fpi import __version__

    return __version__


@dataclass
class SavedModel:
    """Everything a model directory holds, read and checked: the estimator is built from it."""

    path: Path
    meta: dict[str, Any]
    booster: lgb.Booster
    spec: FeatureSpec
    baseline_booster: lgb.Booster | None = None
    reference: pd.DataFrame | None = None
    reference_uploads: np.ndarray | None = None
    rule: RuleCascade | None = None
    temperature: float = 1.0


def write_model(
    directory: str | Path, *, booster: lgb.Booster, meta: Mapping[str, Any], baseline_booster: lgb.Booster | None,
    text: TextStack | None, reference: pd.DataFrame | None, reference_uploads: np.ndarray | None,
) -> tuple[Path, dict[str, Any]]:
    """Write a model directory atomically; return it and the meta written (with the files' hashes).

    A crash mid-save leaves any previous model intact, and a model that cannot be read back is never saved.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a model is meant to be shared
        booster.save_model(staging / MODEL_FILE)
        # Hashes vouch for the files written here and now; a meta copied from another model
        # (a continued candidate) must not vouch for files this one does not have.
        written = {k: v for k, v in meta.items() if not k.endswith("_sha256")}
        written["model_sha256"] = sha256_file(staging / MODEL_FILE)
        if baseline_booster is not None:
            baseline_booster.save_model(staging / BASELINE_FILE)
            written["baseline_sha256"] = sha256_file(staging / BASELINE_FILE)
        if text is not None:
            _write_json(staging / TEXT_TERMS_FILE, text.to_json())
            np.savez_compressed(staging / TEXT_ARRAYS_FILE, **text.arrays())
            written["text_terms_sha256"] = sha256_file(staging / TEXT_TERMS_FILE)
            written["text_models_sha256"] = sha256_file(staging / TEXT_ARRAYS_FILE)
        if reference is not None:
            uploads = {} if reference_uploads is None else {"uploads": reference_uploads.astype(str)}
            np.savez_compressed(staging / REFERENCE_FILE, columns=np.array(list(reference.columns)),
                                values=reference.to_numpy(dtype=np.float32), **uploads)
            written["reference_sha256"] = sha256_file(staging / REFERENCE_FILE)
        _write_json(staging / META_FILE, written)
        try:  # a model that cannot be loaded again is never saved (nor activated from the registry)
            read_model(staging)
        except ModelError as exc:
            raise ModelError(f"refusing to save a model that could not be loaded again: {exc.message}",
                             path=str(target)) from exc
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, written


def read_model(directory: str | Path) -> SavedModel:
    """Read a model directory, refusing one that was edited or is for another contract."""
    path = Path(directory)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"no {META_FILE} found; is this a model directory?", path=str(path))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{META_FILE} is not valid JSON ({exc})", path=str(path)) from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{META_FILE} field '(top level)' must be an object; restore the file or retrain "
                         "the model", path=str(path))
    if meta.get("contract_version") != CONTRACT_VERSION:
        raise ModelError(
            f"model was trained for trace contract v{meta.get('contract_version')}, this fpi reads "
            f"v{CONTRACT_VERSION}; retrain it with `fpi train`", path=str(path),
        )
    classes = meta.get("classes")
    if meta.get("format_version") != FORMAT_VERSION or not isinstance(classes, list) or classes != list(LABELS):
        raise ModelError("model format or classes differ from this fpi; retrain it", path=str(path))
    _check_meta(meta, path)
    saved = SavedModel(path=path, meta=meta, booster=_load_booster(path / MODEL_FILE, meta.get("model_sha256"), path),
                       spec=FeatureSpec.from_json(meta["feature_spec"]))
    if "baseline_sha256" in meta:
        saved.baseline_booster = _load_booster(path / BASELINE_FILE, meta["baseline_sha256"], path)
    if "text_models_sha256" in meta:
        words = json.loads(_checked(path / TEXT_TERMS_FILE, meta.get("text_terms_sha256"), path).decode("utf-8"))
        arrays = _load_npz(path / TEXT_ARRAYS_FILE, meta["text_models_sha256"], path)
        try:
            saved.spec = replace(saved.spec, text=TextStack.from_saved(words, arrays))
        except (KeyError, ValueError) as exc:
            raise ModelError(f"{TEXT_ARRAYS_FILE} does not fit {TEXT_TERMS_FILE} ({exc})", path=str(path)) from exc
    if "reference_sha256" in meta:
        arrays = _load_npz(path / REFERENCE_FILE, meta["reference_sha256"], path)
        saved.reference = pd.DataFrame(np.asarray(arrays["values"], dtype=float),
                                       columns=[str(c) for c in arrays["columns"]])
        saved.reference_uploads = arrays["uploads"].astype(str) if "uploads" in arrays else None
    stored, expected = saved.booster.feature_name(), list(saved.spec.features)
    if stored != expected:
        differ = [f"{a!r} vs {b!r}" for a, b in zip(stored, expected) if a != b][:3]
        raise ModelError("the model's features do not match its meta.json"
                         + (f" (model.txt vs meta.json: {', '.join(differ)})" if differ else
                            f" ({len(stored)} vs {len(expected)} features)")
                         + "; retrain it, or activate another model", path=str(path))
    if meta.get("rule_cascade_thresholds"):
        saved.rule = RuleCascade(dict(meta["rule_cascade_thresholds"]))
    saved.temperature = float(meta.get("temperature", 1.0))
    return saved

"""The package's public API: every name in `fpi.__all__` imports, and every error is among them."""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import fpi
import fpi.errors


@pytest.mark.parametrize("name", fpi.__all__)
def test_every_public_name_imports(name: str) -> None:
    assert getattr(fpi, name) is not None
    assert name in dir(fpi) or name in fpi._LAZY


def test_every_error_is_public() -> None:
    errors = {n for n, v in vars(fpi.errors).items() if inspect.isclass(v) and issubclass(v, Exception)}
    assert errors and errors <= set(fpi.__all__)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        fpi.no_such_thing  # noqa: B018


def test_importing_fpi_loads_no_heavy_library() -> None:
    code = "import sys, fpi; print(sorted(m for m in ('lightgbm', 'pandas', 'sklearn', 'shap') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

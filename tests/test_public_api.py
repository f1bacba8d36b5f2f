"""`gcpjobs`'s public names are listed three times in its `__init__` (the lazy `_EXPORTS` map,
`__all__`, and the imports type checkers read): they must agree, and each must resolve to the
object of that name in the module it is said to live in."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import gcpjobs

INIT = Path(gcpjobs.__file__)


def _type_checking_imports() -> dict[str, str]:
    """Name -> module of every `from MODULE import NAME` under `if TYPE_CHECKING:`."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                found.update({alias.name: statement.module for alias in statement.names})
    return found


def test_the_three_lists_agree() -> None:
    exports = dict(gcpjobs._EXPORTS)
    assert sorted(gcpjobs.__all__) == sorted([*exports, "__version__"])
    assert _type_checking_imports() == exports


def test_every_public_name_is_the_object_its_module_defines() -> None:
    for name, module in gcpjobs._EXPORTS.items():
        assert getattr(gcpjobs, name) is getattr(importlib.import_module(module), name), name


def test_an_unknown_name_is_an_attribute_error_and_import_stays_lazy() -> None:
    probe = ("import sys, gcpjobs\n"
             "try:\n    gcpjobs.NoSuchName\nexcept AttributeError as e:\n    print(e)\n"
             "print(sorted(m for m in sys.modules if m.startswith(('google.cloud.', 'grpc', 'pydantic'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["module 'gcpjobs' has no attribute 'NoSuchName'", "[]"]

"""The code archive: which directory a function's code comes from, what goes in, its address,
and the job's checked extraction."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gcpjobs.steps import archive
from gcpjobs.steps.archive import ArchiveError, code_root_of, install, scan
from tests.steps import functions
from tests.steps.conftest import REPO, unique_label


def test_root_of_a_module_in_a_package() -> None:
    assert code_root_of(functions.add) == REPO  # tests.steps.functions -> the repository


def test_installed_code_needs_no_archive() -> None:
    assert code_root_of(np.sum) is None
    assert code_root_of(os.path.join) is None
    assert code_root_of(len) is None


@pytest.mark.parametrize("how", ["script", "module", "command"])
def test_root_of_main(tmp_path: Path, how: str) -> None:
    package = tmp_path / "proj" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "job.py").write_text(
        "def f():\n    pass\n"
        "from gcpjobs.steps.archive import code_root_of\n"
        "print(code_root_of(f))\n"
    )
    if how == "script":
        argv, cwd, expected = [str(package / "job.py")], tmp_path, package
    elif how == "module":
        argv, cwd, expected = ["-m", "pkg.job"], tmp_path / "proj", tmp_path / "proj"
    else:  # the REPL or a notebook: the working directory
        argv, cwd, expected = ["-c", (package / "job.py").read_text()], package, package
    done = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == str(expected.resolve())


def make_project(root: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/model.py": "x = 1\n",
        "pkg/build/inner.py": "",  # only a top-level build/ is skipped
        "pkg/data.json": "{}",
        "run.sh": "#!/bin/sh\n",
        ".env": "SECRET=1",
        ".git/config": "",
        "pkg/__pycache__/model.cpython-311.pyc": "",
        "pkg/model.pyc": "",
        "venv/pyvenv.cfg": "",
        "venv/lib/x.py": "",
        "node_modules/x.js": "",
        "build/lib/pkg/model.py": "",
        "dist/pkg.whl": "",
        "pkg.egg-info/PKG-INFO": "",
        "store/runs/1/payload": "",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "run.sh").chmod(0o755)


def test_what_goes_in(tmp_path: Path) -> None:
    make_project(tmp_path)
    code = scan(tmp_path, exclude=[tmp_path / "store"])
    assert [file.path for file in code.files] == [
        "pkg/__init__.py", "pkg/build/inner.py", "pkg/data.json", "pkg/model.py", "run.sh"]
    assert [file.path for file in code.files if file.executable] == ["run.sh"]


def test_the_address_follows_the_content(tmp_path: Path) -> None:
    make_project(tmp_path)
    first = scan(tmp_path).digest
    assert scan(tmp_path).digest == first
    (tmp_path / "pkg" / "model.py").write_text("x = 2\n")
    changed = scan(tmp_path).digest
    assert changed != first
    (tmp_path / "pkg" / "model.py").chmod(0o755)
    assert scan(tmp_path).digest != changed


def test_extracted_as_it_was_packed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    make_project(tmp_path / "src")
    code = scan(tmp_path / "src")
    directory = install(code.build_zip(), code.digest)
    assert (directory / "pkg" / "model.py").read_text() == "x = 1\n"
    assert os.access(directory / "run.sh", os.X_OK)
    assert scan(directory).digest == code.digest
    assert install(b"not even a zip", code.digest) == directory  # extracted once per machine


@pytest.mark.parametrize("damage", ["changed", "corrupt", "unsafe-path"])
def test_a_changed_archive_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      damage: str) -> None:
    monkeypatch.setattr(archive.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text(f"# {unique_label()}\n")
    code = scan(tmp_path / "src")
    if damage == "changed":
        (tmp_path / "src" / "mod.py").write_text("import os; os.system('evil')\n")
        data = scan(tmp_path / "src").build_zip()
    elif damage == "corrupt":
        data = code.build_zip()[:-40]
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bad:
            bad.writestr("../escape.py", "")
        data = buffer.getvalue()
    with pytest.raises(ArchiveError):
        install(data, code.digest)
    assert not (tmp_path / "escape.py").exists()
    assert list((tmp_path / "tmp").rglob("*.py")) == []  # nothing left behind


def test_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_BYTES", 10)
    (tmp_path / "big.py").write_text("x" * 11)
    with pytest.raises(ArchiveError, match="code_dir="):
        scan(tmp_path)

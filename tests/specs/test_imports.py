"""The spec layer stays cheap to import: the emulator and the CLI load it on every start."""

from __future__ import annotations

import subprocess
import sys


def modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    return set(result.stdout.split())


def test_labels_import_neither_pydantic_nor_google() -> None:
    # Namespace-package .pth files may load `google` at start-up; only count what is new.
    loaded = modules_after("import gcpjobs.specs.labels") - modules_after("pass")
    assert "pydantic" not in loaded
    assert not any(name.startswith("google") for name in loaded)


def test_specs_do_not_import_the_google_client_libraries() -> None:
    loaded = modules_after("import gcpjobs.specs.jobfile, gcpjobs.specs.vertex")
    assert "google.cloud.aiplatform_v1" not in loaded


def test_requests_never_import_the_high_level_sdk() -> None:
    loaded = modules_after("import gcpjobs.protos.vertex")
    assert "google.cloud.aiplatform_v1" in loaded
    assert "google.cloud.aiplatform" not in loaded


def test_every_public_name_is_exported_and_loads() -> None:
    import gcpjobs

    assert sorted(gcpjobs.__all__) == sorted([*gcpjobs._EXPORTS, "__version__"])
    for name in gcpjobs.__all__:
        assert getattr(gcpjobs, name) is not None


def test_importing_gcpjobs_loads_no_google_library() -> None:
    loaded = modules_after("import gcpjobs") - modules_after("pass")
    assert not any(name.startswith("google.cloud") for name in loaded)

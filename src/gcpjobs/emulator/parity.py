"""The parity table, `docs/parity.md`: every method the emulator serves, per transport, the real
clients the test suite drives it with, and its known differences from Google's service.

    python -m gcpjobs.emulator.parity > docs/parity.md

regenerates it; `tests/emulator/test_parity.py` fails when the file is not what this prints, or
when a served method has no row or no entry in `DIFFERENCES`. Nothing here starts a server.

Where each column comes from:

- **Methods and gRPC**: the emulator's own tables, `dispatch.py` (`*_methods`), exactly what the
  gRPC server registers (the handlers are never called here: a stand-in names them).
- **REST**: `transports/rest.py` `_ROUTES` (Vertex v1, Cloud Run v2, Logging v2, Secret Manager
  v1), each route's regex written back as a path template (`*` for one segment).
- **Cloud Run Admin API v1**: `cloudrun/v1.py` `_PATHS`; a v1 handler serves the v2 method of the
  same name (`replace_job` serves `UpdateJob`: `_V1_SERVES`).
- **Tested with**: read from the test suite's source, statically (parsing `tests/**/*.py`, ~1 s):
  a test module counts for library L and method M when it, or a `tests.*` module it imports,
  imports L, and it calls `.m(...)` with M's GAPIC name (`run_job` for `RunJob`; google-cloud-
  logging's `list_entries` for ListLogEntries); for gcloud, when it passes gcloud the words of a
  command in `_GCLOUD_COMMANDS` (`"run", "jobs", "create"`). `gcpjobs` counts when a module of
  gcpjobs outside the emulator makes the call and a test module imports that module (directly or
  through other gcpjobs modules): its clients, CLI and Prefect workers. Why static: recording
  callers at run time (the `User-Agent` / `x-goog-api-client` of each call) needs the transports
  to hand those headers to the dispatcher, the table would then depend on which tests ran (gcloud
  tests skip where gcloud is not installed), and many tests run on private emulators. The cost
  of static: a library is named, not the transport its tests chose (most modules run the same
  test over gRPC and REST: the `job_client` and `run` fixtures); a call counts for the module,
  not the test, and a same-named method of another object in such a module counts too; raw-HTTP
  tests (`tests/emulator/corpus/`, `cloudrun/test_v1_api.py`) are not clients and are not
  listed. `python -m gcpjobs.emulator.parity --sources` prints the modules behind each cell.
- **Differences**: `DIFFERENCES` below, one entry per served method, from docs/emulator.md and
  the services' docstrings.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcpjobs.emulator import dispatch
from gcpjobs.emulator.cloudrun import v1
from gcpjobs.emulator.dispatch import Method
from gcpjobs.emulator.transports import rest

ROOT = Path(__file__).resolve().parents[3]
COMMAND = "python -m gcpjobs.emulator.parity > docs/parity.md"

# The official Python libraries: the label shown, what a module imports to use it, and the
# services whose methods its clients have (the operations mixins included).
_LIBRARIES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("aiplatform_v1", "google.cloud.aiplatform_v1",
     frozenset({dispatch.JOB_SERVICE, dispatch.OPERATIONS})),
    ("run_v2", "google.cloud.run_v2",
     frozenset({dispatch.RUN_JOBS, dispatch.RUN_EXECUTIONS, dispatch.RUN_TASKS,
                dispatch.OPERATIONS})),
    ("logging_v2", "google.cloud.logging_v2", frozenset({dispatch.LOGGING})),
    ("secretmanager_v1", "google.cloud.secretmanager_v1", frozenset({dispatch.SECRET_MANAGER})),
)
# google-cloud-logging's handwritten client (JSON over HTTP): its method and the one it calls.
_HANDWRITTEN_LOGGING = ("google-cloud-logging (REST)", "google.cloud.logging",
                        {"list_entries": "LoggingServiceV2.ListLogEntries"})

# gcloud commands and the method each one is named for, with the label it is listed under.
_GCLOUD_RUN = "gcloud run (v1 REST)"
_GCLOUD_AI = "gcloud ai (REST)"
_GCLOUD_COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("run", "jobs", "create"): (_GCLOUD_RUN, "Jobs.CreateJob"),
    ("run", "jobs", "describe"): (_GCLOUD_RUN, "Jobs.GetJob"),
    ("run", "jobs", "list"): (_GCLOUD_RUN, "Jobs.ListJobs"),
    ("run", "jobs", "update"): (_GCLOUD_RUN, "Jobs.UpdateJob"),
    ("run", "jobs", "delete"): (_GCLOUD_RUN, "Jobs.DeleteJob"),
    ("run", "jobs", "execute"): (_GCLOUD_RUN, "Jobs.RunJob"),
    ("run", "jobs", "executions", "list"): (_GCLOUD_RUN, "Executions.ListExecutions"),
    ("run", "jobs", "executions", "describe"): (_GCLOUD_RUN, "Executions.GetExecution"),
    ("run", "jobs", "executions", "cancel"): (_GCLOUD_RUN, "Executions.CancelExecution"),
    ("run", "jobs", "executions", "delete"): (_GCLOUD_RUN, "Executions.DeleteExecution"),
    ("run", "jobs", "executions", "tasks", "list"): (_GCLOUD_RUN, "Tasks.ListTasks"),
    ("run", "jobs", "executions", "tasks", "describe"): (_GCLOUD_RUN, "Tasks.GetTask"),
    ("ai", "custom-jobs", "create"): (_GCLOUD_AI, "JobService.CreateCustomJob"),
    ("ai", "custom-jobs", "describe"): (_GCLOUD_AI, "JobService.GetCustomJob"),
    ("ai", "custom-jobs", "list"): (_GCLOUD_AI, "JobService.ListCustomJobs"),
    ("ai", "custom-jobs", "cancel"): (_GCLOUD_AI, "JobService.CancelCustomJob"),
}
_GCPJOBS = "gcpjobs"
# v1 handlers that serve a v2 method of another name.
_V1_SERVES = {"replace_job": "UpdateJob"}

_ALL_APIS = ("Everywhere: no IAM or authentication (every caller may do everything); names carry "
             "the project id the client sent, where Google answers with the project number.")
_VERTEX_JOB = "images are recorded, not pulled: replicas run `command + args` on this host"
_RUN_JOB = "images are recorded, not pulled: tasks run the first container's `command + args` here"
DIFFERENCES: dict[str, str] = {
    "JobService.CreateCustomJob":
        f"{_VERTEX_JOB}; machines, accelerators, spot capacity and reservations are validated "
        "and recorded, not provided; `gs://` output is a local directory; "
        "`python_package_spec` is refused.",
    "JobService.GetCustomJob": "none known",
    "JobService.ListCustomJobs": "`read_mask` is ignored; at most 100 a page (larger sizes are "
                                 "capped; the API documents no maximum).",
    "JobService.CancelCustomJob": "replicas get SIGTERM, then SIGKILL after "
                                  "`cancel_grace_seconds`.",
    "JobService.DeleteCustomJob": "none known",
    "Operations.GetOperation": "one Operations service answers for Vertex and Cloud Run "
                               "operations alike.",
    "Operations.ListOperations": "operations are kept in the emulator's SQLite file, with no "
                                 "expiry.",
    "Operations.WaitOperation": "a call waits at most 60 s, whatever its `timeout`; "
                                "google-cloud-run's gRPC transport returns its response as bytes.",
    "Operations.DeleteOperation": "none known",
    "Jobs.CreateJob": f"{_RUN_JOB}; nothing is deployed, so the operation is done at once; "
                      "volumes, VPC, GPUs and execution tokens are refused or recorded, not "
                      "provided.",
    "Jobs.GetJob": "none known",
    "Jobs.ListJobs": "`show_deleted` is ignored.",
    "Jobs.UpdateJob": "the operation is done at once.",
    "Jobs.DeleteJob": "the operation is done at once; a job with a running execution is "
                      "FAILED_PRECONDITION.",
    "Jobs.RunJob": "an execution waits `queued_seconds` (an emulator setting) before its tasks "
                   "start; failed attempts are retried at once.",
    "Executions.GetExecution": "`log_uri` is a `file://` URI of the local log directory.",
    "Executions.ListExecutions": "`show_deleted` is ignored.",
    "Executions.CancelExecution": "running tasks get SIGTERM, then SIGKILL after "
                                  "`cancel_grace_seconds`.",
    "Executions.DeleteExecution": "none known",
    "Tasks.GetTask": "`log_uri` is a `file://` URI of the task's last attempt log.",
    "Tasks.ListTasks": "none known",
    "LoggingServiceV2.ListLogEntries": "only the jobs' own output and the emulator's notes are "
                                       "logged; an entry's `timestamp` is when the emulator read "
                                       "the line.",
    "LoggingServiceV2.TailLogEntries": "files are polled every 0.1 s; at most 10 open tails a "
                                       "project and 100 in all.",
    "SecretManagerService.CreateSecret": "no regional secrets, rotation or expiry (a `ttl` or "
                                         "`expire_time` is recorded, nothing expires).",
    "SecretManagerService.GetSecret": "no etags.",
    "SecretManagerService.ListSecrets": "none known",
    "SecretManagerService.DeleteSecret": "none known",
    "SecretManagerService.AddSecretVersion": "every version is ENABLED (no version states).",
    "SecretManagerService.AccessSecretVersion": "none known",
}


# ------------------------------------------------------------------------------ served methods


class _StandIn:
    """Takes the services' place when the method tables are built: the tables only name their
    handlers, and nothing here calls one."""

    def __getattr__(self, name: str) -> Callable[[Any], Any]:
        def handler(request: Any) -> Any:
            raise RuntimeError(f"the parity table serves nothing ({name})")
        return handler


def served_methods() -> list[Method]:
    """Every method the emulator serves over gRPC, in the server's order (server.py)."""
    stand_in: Any = _StandIn()
    return [*dispatch.vertex_methods(stand_in), *dispatch.cloud_run_methods(stand_in),
            *dispatch.operation_methods(stand_in), *dispatch.logging_methods(stand_in),
            *dispatch.secret_manager_methods(stand_in)]


def path_template(pattern: str) -> str:
    """A route's regex as a path template: `^/v2/(projects/[^/]+/locations/[^/]+)/jobs$` →
    `/v2/projects/*/locations/*/jobs`; `(?:v1|ui)` → `{v1,ui}`. ValueError for a regex it
    cannot write back, so a new kind of route cannot reach the table garbled."""
    text = pattern.removeprefix("^").removesuffix("$")
    text = re.sub(r"\(\?:([^()]*)\)", lambda m: "{" + m.group(1).replace("|", ",") + "}", text)
    text = re.sub(r"\[\^/:?\]\+", "*", text).replace("(", "").replace(")", "")
    if re.search(r"[\\^$+?()\[\]|]", text):
        raise ValueError(f"cannot write route {pattern!r} as a path template")
    return text


def rest_routes() -> dict[str, list[str]]:
    """Method key → `VERB /path/template` of each REST route that serves it."""
    routes: dict[str, list[str]] = {}
    for route in rest._ROUTES:
        routes.setdefault(route.method_key, []).append(
            f"{route.http_method} {path_template(route.pattern.pattern)}")
    return routes


def v1_routes(methods: Iterable[Method]) -> dict[str, list[str]]:
    """Method key → the Cloud Run Admin API v1 routes that serve it (through that v2 method).
    ValueError for a v1 handler that names no served method."""
    by_name = {method.name: method.key for method in methods
               if method.service in (dispatch.RUN_JOBS, dispatch.RUN_EXECUTIONS, dispatch.RUN_TASKS)}
    routes: dict[str, list[str]] = {}
    for http_method, pattern, handler in v1._PATHS:
        name = _V1_SERVES.get(handler, _camel(handler))
        if name not in by_name:
            raise ValueError(f"v1 handler {handler!r} serves no Cloud Run v2 method; add it to "
                             "parity._V1_SERVES")
        routes.setdefault(by_name[name], []).append(
            f"{http_method} {v1.PREFIX}{path_template(pattern.pattern)}")
    return routes


def _camel(snake: str) -> str:
    return "".join(word.title() for word in snake.split("_"))


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


# ------------------------------------------------------------------------------ the test suite


@dataclass
class _Module:
    name: str  # dotted: tests.emulator.cloudrun.support, gcpjobs.clients.vertex
    imports: set[str]  # every module named by an import in it
    calls: set[str]  # attribute names called: `x.run_job(...)` → run_job
    word_runs: list[tuple[str, ...]]  # runs of string constants in calls and list literals
    mentions_gcloud: bool


def _scan(name: str, source: str) -> _Module:
    tree = ast.parse(source)
    module = _Module(name, set(), set(), [], mentions_gcloud="gcloud" in source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            module.imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module.imports.add(node.module)
            module.imports.update(f"{node.module}.{alias.name}" for alias in node.names)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            module.calls.add(node.func.attr)
        elements = node.args if isinstance(node, ast.Call) else (
            node.elts if isinstance(node, ast.List | ast.Tuple) else None)
        if elements:
            module.word_runs.append(_leading_words(elements))
    return module


def _leading_words(elements: Iterable[ast.expr]) -> tuple[str, ...]:
    """The string constants after any leading non-constants (the gcloud path), up to the first
    other element: `[gcloud, "ai", "custom-jobs", "create", name]` → ("ai", "custom-jobs",
    "create")."""
    words: list[str] = []
    for element in elements:
        if isinstance(element, ast.Constant) and isinstance(element.value, str):
            words.append(element.value)
        elif words:
            break
    return tuple(words)


def _modules(root: Path) -> dict[str, _Module]:
    modules: dict[str, _Module] = {}
    for base, package in ((root / "tests", "tests"), (root / "src" / "gcpjobs", "gcpjobs")):
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            if package == "gcpjobs" and parts[:1] == ("emulator",):
                continue  # the emulator is what is tested, not a client of itself
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            modules[name] = _scan(name, path.read_text(encoding="utf-8"))
    return modules


def _reachable(start: str, modules: Mapping[str, _Module], prefix: str) -> set[str]:
    """`start` and every module under `prefix` it imports, directly or through others."""
    seen = {start}
    pending = [start]
    while pending:
        for imported in modules[pending.pop()].imports:
            # Only modules an import names: importing `gcpjobs.specs.vertex` runs the packages
            # above it too, but uses none of their code.
            if imported.startswith(prefix) and imported in modules and imported not in seen:
                seen.add(imported)
                pending.append(imported)
    return seen


def _imports_package(imports: Iterable[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in imports)


def _library_uses(module: _Module, imports: set[str],
                  methods: Iterable[Method]) -> Iterator[tuple[str, str]]:
    """(label, method key) for the official-library calls `module` makes."""
    for label, package, services in _LIBRARIES:
        if _imports_package(imports, package):
            for method in methods:
                if method.service in services and _snake(method.name) in module.calls:
                    yield label, method.key
    label, package, handwritten = _HANDWRITTEN_LOGGING
    if _imports_package(imports, package):
        for call, key in handwritten.items():
            if call in module.calls:
                yield label, key


def _gcloud_uses(module: _Module) -> Iterator[tuple[str, str]]:
    if not module.mentions_gcloud:
        return
    for words in module.word_runs:
        for command, use in _GCLOUD_COMMANDS.items():
            if words[:len(command)] == command:
                yield use


def tested_with(methods: Iterable[Method], root: Path = ROOT) -> dict[str, dict[str, set[str]]]:
    """Method key → client → the test modules under `root` that drive the method with it (the
    module notes say how they are found)."""
    methods = list(methods)
    if not (root / "tests").is_dir():
        raise FileNotFoundError(f"no tests/ under {root}: run this from a source checkout")
    modules = _modules(root)
    found: dict[str, dict[str, set[str]]] = {method.key: {} for method in methods}
    gcpjobs_uses = {name: {key for _, key in _library_uses(module, _all_imports(name, modules),
                                                             methods)}
                    for name, module in modules.items() if name.startswith("gcpjobs")}
    for name, module in modules.items():
        if not name.startswith("tests."):
            continue
        imports = _all_imports(name, modules)
        for label, key in (*_library_uses(module, imports, methods), *_gcloud_uses(module)):
            found[key].setdefault(label, set()).add(name)
        for reached in _reachable(name, modules, "gcpjobs"):
            for key in gcpjobs_uses.get(reached, ()):
                found[key].setdefault(_GCPJOBS, set()).add(name)
    return found


def _all_imports(name: str, modules: Mapping[str, _Module]) -> set[str]:
    """What `name` imports, and what the modules of its own package it imports do: a test's
    clients often come from a support module."""
    package = name.split(".", 1)[0]
    return {imported for reached in _reachable(name, modules, package)
            for imported in modules[reached].imports}


# ------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Row:
    key: str
    service: str
    name: str
    grpc: str
    rest: list[str]
    v1: list[str]
    clients: list[str]
    differences: str


def rows(root: Path = ROOT) -> list[Row]:
    """One row per served method; KeyError for a method with no `DIFFERENCES` entry."""
    methods = served_methods()
    routes, v1_paths = rest_routes(), v1_routes(methods)
    clients = tested_with(methods, root)
    return [Row(method.key, method.service, method.name,
                "bidi stream" if method.streaming else "served",
                routes.get(method.key, []), v1_paths.get(method.key, []),
                sorted(clients[method.key], key=str.lower), DIFFERENCES[method.key])
            for method in methods]


def _cell(items: list[str], empty: str) -> str:
    return "<br>".join(f"`{item}`" for item in items) if items else empty


def render(root: Path = ROOT) -> str:
    """docs/parity.md for the checkout at `root`."""
    return format_table(rows(root))


def format_table(table: list[Row]) -> str:
    lines = [
        "# Emulator parity table",
        "",
        f"<!-- Generated by `{COMMAND}` from the emulator's method tables and the test suite; "
        "do not edit. -->",
        "",
        "Every method the gcpjobs emulator serves, by transport, with the real clients the test "
        "suite drives it with and what is known to differ from Google's service, in the spirit "
        "of the Cloud Spanner emulator's *limitations and differences*. "
        "[docs/emulator.md](emulator.md) describes the behaviour.",
        "",
        "How it is made (`src/gcpjobs/emulator/parity.py` says more):",
        "",
        "- **gRPC** and **REST** come from the tables the servers are built from "
        "(`dispatch.py`, `transports/rest.py`); **Cloud Run v1** from `cloudrun/v1.py`, whose "
        "routes are served through the v2 method of their row. `*` is one path segment.",
        "- **Tested with** is read from the tests' source: a test module (or a `tests` module it "
        "imports) imports the library and calls the method by its Python name, or runs the "
        "gcloud command named for it; `gcpjobs` is this project's own clients, CLI and Prefect "
        "workers, when a test imports the code that calls it. The transport a library's tests "
        "used is not told apart (most run over both), and raw-HTTP tests are not listed. "
        "**none** marks a method no client test drives.",
        f"- **Known differences** are kept beside the code, `parity.DIFFERENCES`. {_ALL_APIS}",
        "",
        f"`tests/emulator/test_parity.py` fails when this file is stale (`{COMMAND}`) or when a "
        "served method has no row.",
    ]
    services = list(dict.fromkeys(row.service for row in table))
    for service in services:
        lines += ["", f"## `{service}`", "",
                  "| Method | gRPC | REST | Cloud Run v1 | Tested with | Known differences |",
                  "|---|---|---|---|---|---|"]
        for row in (row for row in table if row.service == service):
            lines.append(" | ".join((
                f"| `{row.name}`", row.grpc, _cell(row.rest, "not served"),
                _cell(row.v1, "—"),
                ", ".join(row.clients) if row.clients else "**none**",
                row.differences.replace("|", "\\|"))) + " |")
    return "\n".join(lines) + "\n"


def sources(root: Path = ROOT) -> str:
    """Each "tested with" entry and the test modules it was read from, to check a cell."""
    found = tested_with(served_methods(), root)
    return "".join(f"{key}  {label}: {', '.join(sorted(modules))}\n"
                   for key, clients in found.items()
                   for label, modules in sorted(clients.items()))


def main(argv: list[str] | None = None) -> int:
    """`parity [--sources] [ROOT]`: the table (or where its "tested with" cells come from)."""
    args = sys.argv[1:] if argv is None else argv
    show_sources = "--sources" in args
    paths = [arg for arg in args if arg != "--sources"]
    root = Path(paths[0]) if paths else ROOT
    sys.stdout.write(sources(root) if show_sources else render(root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

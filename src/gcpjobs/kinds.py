"""The kinds of job gcpjobs runs, in one registry that every kind-dependent choice asks.

One `KindEntry` per kind names, by import path (`module:attribute`), what serves it: its spec
class, request builder, preview, client, default template, job-file parser and Prefect
worker, plus the rules by which a job's name says it is of this kind, and, as plain fields,
how its service differs where the CLI shows or looks for jobs (what `run` says on create,
live task counts, list filters, which name a user gave a job). Paths are resolved on use, the way
fsspec's `known_implementations` are: this module imports nothing heavy, so specs, clients,
steps, integrations and the CLI can all import it without import circles or start-up cost.

Vertex AI and Cloud Run are registered here. Another package adds a kind by declaring an
entry point in the `gcpjobs.kinds` group whose object is a `KindEntry` (or a callable
returning one); those are loaded once, the first time a kind is looked for that the built-in
ones do not cover. A kind can also be added at run time with `register_kind`.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gcpjobs.errors import GcpJobsError, SpecError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from gcpjobs.states import JobState

__all__ = [
    "ENTRY_POINT_GROUP", "KindEntry", "UnknownKindError", "bare_name_kind", "builtin_kinds",
    "given_name_of", "kind_entry", "kind_of_name", "known_kinds", "load_entry_point_kinds",
    "register_kind", "resolve", "unregister_kind",
]

ENTRY_POINT_GROUP = "gcpjobs.kinds"


class UnknownKindError(SpecError):
    """A kind no entry is registered for; the message lists the known kinds. A SpecError: the
    kind is part of the job's description, and is refused before anything is sent."""


def resolve(path: str) -> Any:
    """The object an import path `package.module:attribute.inner` names (imports the module)."""
    module_name, _, attribute = path.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        found = getattr(found, part)
    return found


@dataclass(frozen=True)
class KindEntry:
    """What serves one kind of job. Every path is `module:attribute`, imported only on use.

    - `spec_class`: the pydantic spec (`VertexJob`, `CloudRunJob`);
    - `client_class`: the async client, called with the clients' keyword options;
    - `request_builder`: spec (+ submission id) -> the service's create-request proto;
    - `default_template`: (kind) -> the default template of the kind as plain data;
    - `job_file_parser`: (document, default name) -> spec, for `kind: NAME` job files; None:
      the spec class validates the document, named after the file when it has no name;
    - `prefect_worker`: the Prefect worker class (None: no worker for this kind);
    - `name_rule`: (job name) -> bool, True where a name is plainly this kind's (a Vertex
      numeric id, a Cloud Run `/executions/` path); None: names never tell this kind;
    - `label`: the service's name as users read it ("Cloud Run");
    - `aliases`: other names the kind is looked up by;
    - `preview`: (spec, "yaml" | "json") -> the create request as text, secrets redacted
      (what `spec.preview()` answers; it lives in the request layer, the spec only asks here);
    - `started_word`: what `gcpjobs run` says before the new run's name ("created NAME");
    - `live_task_counts`: its statuses count tasks worth following live (Cloud Run's), so
      `run` asks for them between state changes;
    - `executions`: its statuses are runs (executions) of a job resource that can be kept and
      run again: a bare name may be a run's id (tried before the names users gave), and a
      name that is the kept job's own counts once, as its newest run;
    - `list_filter`: its client's `list` takes `filter=` in the AIP-160 filter language
      (`gcpjobs list --filter`); without it listings are narrowed here, after they arrive;
    - `unended_filter`, `name_filter`, `state_filter` (read with `list_filter` only): the
      filter text for the unended jobs gcpjobs submitted, (name) -> the filter for jobs
      submitted under a name, (JobState) -> the clause for one state; None: that narrowing
      is done here instead;
    - `given_name_rule`: (display name, resource name) -> the name the user gave the job
      (a Cloud Run job id); None: its display name.
    """

    name: str
    label: str
    spec_class: str
    client_class: str
    request_builder: str
    default_template: str
    job_file_parser: str | None = None
    prefect_worker: str | None = None
    name_rule: str | None = None
    aliases: tuple[str, ...] = ()
    preview: str | None = None
    started_word: str = "created"
    live_task_counts: bool = False
    executions: bool = False
    list_filter: bool = False
    unended_filter: str | None = None
    name_filter: str | None = None
    state_filter: str | None = None
    given_name_rule: str | None = None

    def load(self, what: str) -> Any:
        """The object the path field `what` names (e.g. `entry.load("client_class")`)."""
        path = getattr(self, what)
        if not isinstance(path, str):
            raise GcpJobsError(f"kind {self.name!r} has no {what.replace('_', ' ')}")
        try:
            return resolve(path)
        except (ImportError, AttributeError) as error:
            raise GcpJobsError(f"kind {self.name!r}: {what.replace('_', ' ')} {path!r} cannot "
                               f"be loaded ({error}); reinstall the package that provides it"
                               ) from None

    def claims_name(self, name: str) -> bool:
        return self.name_rule is not None and bool(self.load("name_rule")(name))

    @property
    def request_module(self) -> str:
        """The module of its request builder (most of a submission's import cost)."""
        return self.request_builder.partition(":")[0]

    def given_name(self, display_name: str, name: str) -> str:
        """The name the user gave the job whose display and resource names these are."""
        if self.given_name_rule is None:
            return display_name
        return str(self.load("given_name_rule")(display_name, name))

    def unended_list_filter(self) -> str | None:
        """The list filter for the unended jobs gcpjobs submitted; None: list them all."""
        return self._list_filter("unended_filter")

    def name_list_filter(self, name: str) -> str | None:
        """The list filter for the jobs submitted under `name`; None: list them all."""
        return self._list_filter("name_filter", name)

    def state_list_filter(self, state: JobState) -> str | None:
        """The list-filter clause for jobs in `state`; None: the state is checked here."""
        return self._list_filter("state_filter", state)

    def _list_filter(self, field: str, *arguments: object) -> str | None:
        """The filter text the path `field` names (called with `arguments` where given)."""
        if not (self.list_filter and getattr(self, field)):
            return None
        found = self.load(field)
        return str(found(*arguments) if arguments else found)


# -- name rules of the built-in kinds (here: they are cheap and need no other import) --------


def is_vertex_job_name(name: str) -> bool:
    """Vertex custom jobs have numeric ids and live under `/customJobs`."""
    text = name.strip()
    return "/customJobs" in text or text.isdigit()


def is_cloud_run_execution_name(name: str) -> bool:
    """Cloud Run executions live under `/executions/`."""
    return "/executions/" in name.strip()


def cloud_run_job_id(display_name: str, name: str) -> str:
    """`projects/P/locations/R/jobs/JOB/executions/E` -> `JOB`: the name a Cloud Run run was
    given is its job's, not its execution's (the display name)."""
    parts = name.split("/")
    return parts[5] if len(parts) > 5 else ""


def vertex_name_filter(name: str) -> str:
    """ListCustomJobs filter: the display name `name`, or `name` and a suffix (the suffix is
    checked once the jobs arrive, against their submission ids)."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'display_name="{quoted}" OR display_name:"{quoted}-*"'


def vertex_state_filter(state: JobState) -> str:
    """ListCustomJobs filter clause for jobs in `state`."""
    return f'state="JOB_STATE_{state.value}"'


_BUILTIN = (
    KindEntry(
        name="vertex",
        label="Vertex AI",
        spec_class="gcpjobs.specs.vertex:VertexJob",
        client_class="gcpjobs.clients.vertex:AsyncVertexClient",
        request_builder="gcpjobs.protos.vertex:build_custom_job",
        default_template="gcpjobs.specs.default_templates:default_template_data",
        job_file_parser="gcpjobs.specs.jobfile:parse_vertex_document",
        prefect_worker="gcpjobs.integrations.prefect.worker:VertexWorker",
        name_rule="gcpjobs.kinds:is_vertex_job_name",
        preview="gcpjobs.protos.vertex:preview",
        list_filter=True,
        unended_filter="gcpjobs.clients.vertex:UNENDED_FILTER",
        name_filter="gcpjobs.kinds:vertex_name_filter",
        state_filter="gcpjobs.kinds:vertex_state_filter",
    ),
    KindEntry(
        name="cloud-run",
        label="Cloud Run",
        spec_class="gcpjobs.specs.cloudrun:CloudRunJob",
        client_class="gcpjobs.clients.cloudrun:AsyncCloudRunClient",
        request_builder="gcpjobs.protos.cloudrun:build_job",
        default_template="gcpjobs.specs.default_templates:default_template_data",
        job_file_parser="gcpjobs.specs.jobfile:parse_cloud_run_document",
        prefect_worker="gcpjobs.integrations.prefect.worker:CloudRunWorker",
        name_rule="gcpjobs.kinds:is_cloud_run_execution_name",
        preview="gcpjobs.protos.cloudrun:preview",
        started_word="started execution",
        live_task_counts=True,
        executions=True,
        given_name_rule="gcpjobs.kinds:cloud_run_job_id",
    ),
)

# Registration order is the order kinds are listed in (and their name rules tried in).
_ENTRIES: dict[str, KindEntry] = {}
_ALIASES: dict[str, str] = {}
_entry_points_loaded = False


def register_kind(entry: KindEntry, *, replace: bool = False) -> KindEntry:
    """Add a kind (GcpJobsError if its name or an alias is taken, unless `replace`)."""
    names = (entry.name, *entry.aliases)
    if not replace:
        for name in names:
            if name in _ENTRIES or name in _ALIASES:
                raise GcpJobsError(f"kind {name!r} is registered already; pick another name")
    unregister_kind(entry.name)
    _ENTRIES[entry.name] = entry
    _ALIASES.update({alias: entry.name for alias in entry.aliases})
    return entry


def unregister_kind(name: str) -> None:
    """Remove a kind and its aliases (nothing happens for an unknown one)."""
    entry = _ENTRIES.pop(name, None)
    if entry is not None:
        for alias in entry.aliases:
            _ALIASES.pop(alias, None)


def builtin_kinds() -> tuple[str, ...]:
    """The kinds gcpjobs itself serves, in their order (no plug-in is loaded)."""
    return tuple(entry.name for entry in _BUILTIN)


def known_kinds() -> tuple[str, ...]:
    """Every registered kind, plug-ins included, built-in ones first."""
    _load_entry_points_once()
    return tuple(_ENTRIES)


def _lookup(name: object) -> KindEntry | None:
    if not isinstance(name, str):
        return None
    return _ENTRIES.get(_ALIASES.get(name, name))


def kind_entry(name: object) -> KindEntry:
    """The entry of kind `name` (or an alias); UnknownKindError listing the known kinds."""
    entry = _lookup(name)
    if entry is None:
        _load_entry_points_once()  # only a miss pays for reading installed packages
        entry = _lookup(name)
    if entry is None:
        raise UnknownKindError(f"unknown kind {name!r}; use one of: {', '.join(known_kinds())}")
    return entry


def given_name_of(kind: str, display_name: str, name: str) -> str:
    """The name the user gave a job of `kind` (see `KindEntry.given_name`); for a kind no
    longer registered (a record from a gcpjobs that knew more kinds), its display name."""
    try:
        entry = kind_entry(kind)
    except UnknownKindError:
        return display_name
    return entry.given_name(display_name, name)


def bare_name_kind() -> str:
    """The kind a bare name no kind's name rule claims is taken to be: the first built-in
    kind whose runs have bare ids (`executions`: Cloud Run's)."""
    return next(entry.name for entry in _BUILTIN if entry.executions)


def kind_of_name(name: str) -> str | None:
    """The kind a job name says it is, by the kinds' name rules in order; None for a bare name
    that could be either (such as a Cloud Run job id)."""
    for entry in list(_ENTRIES.values()):
        if entry.claims_name(name):
            return entry.name
    return None


def load_entry_point_kinds(entry_points: Iterable[EntryPoint] | None = None) -> list[str]:
    """Register the kinds that installed packages declare in the `gcpjobs.kinds` group (or
    those of `entry_points`); the names added. A plug-in that cannot be loaded, or that names
    a kind already registered, is skipped with a warning: one broken package must not stop
    every other kind from working."""
    if entry_points is None:
        from importlib.metadata import entry_points as installed

        entry_points = installed(group=ENTRY_POINT_GROUP)
    added: list[str] = []
    for point in entry_points:
        try:
            loaded = point.load()
            entry = loaded if isinstance(loaded, KindEntry) else loaded()
            if not isinstance(entry, KindEntry):
                raise TypeError(f"it gives {type(entry).__name__}, not a KindEntry")
            register_kind(entry)
        except Exception as error:  # any failure of a plug-in is reported, not raised
            warnings.warn(f"gcpjobs kind plug-in {point.name!r} ({point.value}) is skipped: "
                          f"{error}", RuntimeWarning, stacklevel=2)
            continue
        added.append(entry.name)
    return added


def _load_entry_points_once() -> None:
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        load_entry_point_kinds()


for _entry in _BUILTIN:
    register_kind(_entry)

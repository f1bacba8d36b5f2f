"""The job configuration of the gcpjobs Prefect workers: a rendered base job template, turned
into one validated gcpjobs spec per flow run.

Prefect renders the work pool's base job template (see `templates.py`) with the deployment's
and the flow run's job variables and builds the configuration class from it
(`from_template_and_values`), then `prepare_for_flow_run` fills in Prefect's part: the
standard command, the environment (PREFECT_API_URL, PREFECT__FLOW_RUN_ID ...), labels
(prefect.io/flow-run-id ...) and the flow run's name. `to_spec()` merges all of it into the
job document and validates it as a `VertexJob` or a `CloudRunJob`, so that every problem is
one line (`job variable machine_type: 'n9' is not a Vertex AI training machine type; ...`)
before anything is sent.

Cloud Run gets the Prefect API key (and auth string) only as a Secret Manager reference,
never as a plain value in the request; Vertex AI has no secret references, so there it stays
an environment value, as with prefect-gcp.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from prefect.workers.base import BaseJobConfiguration
from pydantic import Field, ValidationError, field_validator

from gcpjobs.errors import SpecError
from gcpjobs.integrations.prefect.credentials import GcpJobsCredentials
from gcpjobs.integrations.prefect.templates import JOB_KEY
from gcpjobs.kinds import kind_entry
from gcpjobs.specs.base import (
    closest,
    parse_duration,
    scalar_text,
    spec_error_from,
    type_name,
)
from gcpjobs.specs.cloudrun import CloudRunJob, SecretRef, suggest_job_name
from gcpjobs.specs.container import labels_as_text
from gcpjobs.specs.labels import sanitize_labels
from gcpjobs.specs.vertex import VertexJob

__all__ = [
    "CloudRunJobConfiguration",
    "GcpJobsJobConfiguration",
    "VertexJobConfiguration",
    "job_variable_error",
]

PREFECT_LABEL_PREFIX = "prefect.io/"
# Environment variables that hold Prefect credentials, and the job variable naming the
# Secret Manager secret Cloud Run reads each one from.
PREFECT_SECRET_ENV = {
    "PREFECT_API_KEY": "prefect_api_key_secret",
    "PREFECT_API_AUTH_STRING": "prefect_api_auth_string_secret",
}
# Vertex AI Scheduling keys (snake_case, or camelCase as the REST API writes them) -> ours.
_SCHEDULING_KEYS = {
    "strategy": "strategy", "timeout": "timeout",
    "restart_job_on_worker_restart": "restart_job_on_worker_restart",
    "restartJobOnWorkerRestart": "restart_job_on_worker_restart",
    "disable_retries": "disable_retries", "disableRetries": "disable_retries",
    "max_wait_duration": "max_wait_duration", "maxWaitDuration": "max_wait_duration",
}
# Deprecated Vertex strategy names with a documented meaning (as `specs.jobfile` reads them).
_STRATEGY_ALIASES = {"STRATEGY_UNSPECIFIED": "STANDARD", "ON_DEMAND": "STANDARD"}
_UNSET_LAUNCH_STAGE = "LAUNCH_TAG_UNSPECIFIED"
_MISSING = "is required; add it to the job"  # specs.base.describe_error's "missing"

Normalizer = Callable[[Any], Any]


def job_variable_error(reason: str, field: str | None = None) -> SpecError:
    """`job variable <field>: <reason>` (or `job variables: <reason>`), on one line."""
    error = SpecError(reason, field=field)
    text = f"job variable {field}: {reason}" if field else f"job variables: {reason}"
    error.args = (" ".join(text.split("\n")),)
    return error


def _renamed(field: str | None, origins: Mapping[str, str]) -> str | None:
    """A spec field path named after the job variable it came from (`service_account` ->
    `service_account_name` when that variable gave it)."""
    if not field:
        return field
    for target in sorted(origins, key=len, reverse=True):
        if field == target or field.startswith((f"{target}.", f"{target}[")):
            return origins[target] + field[len(target):]
    return field


def _mapping(value: Any, field: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise job_variable_error(f"must be a mapping, not {type_name(value)}", field)
    return dict(value)


def _clean_labels(labels: Mapping[Any, Any], field: str) -> dict[str, str]:
    """Valid Google Cloud labels for one group of labels (see `specs.labels`)."""
    text = labels_as_text(labels)
    for key, value in text.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise job_variable_error(f"label {key!r} must have text as its value, not "
                                     f"{type_name(value)}", field)
    try:
        return sanitize_labels(text)
    except SpecError as exc:
        raise job_variable_error(exc.reason, field) from None


def _duration(value: Any) -> timedelta:
    return parse_duration(value)


def _hours(value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"must be a number of hours, got {type_name(value)}; write it like 2 "
                        "or 0.5")
    return timedelta(hours=value)


def _strategy(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name = value.strip().upper().replace("-", "_")
    return _STRATEGY_ALIASES.get(name, name)


def _same(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _pick(sources: list[tuple[str, Any, Normalizer]]) -> tuple[str, Any] | None:
    """The one value several job variables give for the same field, as (variable, value).

    Unset (None) sources are skipped; two that are set must mean the same (after
    normalising: `maximum_run_time_hours: 2` is `maximum_run_time: 2h`), else one line naming
    both. The first source that is set wins (the field of ours before the aliases).
    """
    given = [(variable, value, normalize) for variable, value, normalize in sources
             if value is not None]
    if not given:
        return None
    if len(given) > 1:
        normalized: list[tuple[str, Any]] = []
        for variable, value, normalize in given:
            try:
                normalized.append((variable, normalize(value)))
            except SpecError as exc:
                raise job_variable_error(exc.reason, variable) from None
        first_variable, first = normalized[0]
        for variable, value in normalized[1:]:
            if value != first:
                raise job_variable_error(
                    f"{first_variable} and {variable} are both set, to different values; set "
                    "only one of them")
    variable, value, _ = given[0]
    return variable, value


class GcpJobsJobConfiguration(BaseJobConfiguration):
    """What one flow run's job is made of: Prefect's command/env/labels/name, the rendered job
    document (`job`), the credentials block and prefect-gcp's alias variables.

    Construction errors (a job variable of the wrong type) are one-line `SpecError`s too, not
    pydantic's multi-line report: Prefect builds this class from job variables users typed.
    """

    # The kind registry's name for this configuration's kind; its spec class is the
    # registry's (set once per subclass that names a kind, see `__pydantic_init_subclass__`).
    kind: ClassVar[str]
    spec_class: ClassVar[type[VertexJob] | type[CloudRunJob]]

    job: dict[str, Any] = Field(
        default_factory=dict,
        description="The job document: `kind` and the gcpjobs spec's fields, rendered from "
                    "the work pool's base job template.",
    )
    credentials: GcpJobsCredentials | None = Field(
        default=None, description="How to authenticate; unset: Application Default Credentials.")
    job_watch_poll_interval: float | None = Field(
        default=None, gt=0, description="Seconds between the watcher's checks of the jobs' "
                                         "states (prefect-gcp's name); None lets it adapt.")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "kind" in cls.__dict__:  # a configuration of one kind: validated by its spec class
            cls.spec_class = kind_entry(cls.kind).load("spec_class")

    def __init__(self, /, **data: Any) -> None:
        for name in ("env", "labels"):
            if name in data and data[name] is None:
                del data[name]  # an explicit null means unset (Prefect's own code would crash)
            elif name in data and not isinstance(data[name], Mapping):
                raise job_variable_error(f"must be a mapping of names to text, not "
                                         f"{type_name(data[name])}", name)
        if data.get(JOB_KEY) is None:
            data.pop(JOB_KEY, None)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = spec_error_from(exc)
            raise job_variable_error(error.reason, error.field) from None

    @classmethod
    async def from_template_and_values(  # type: ignore[override]
        cls, base_job_template: dict[str, Any], values: dict[str, Any], client: Any = None,
    ) -> Any:
        """Prefect's rendering, after refusing job variables the work pool does not declare:
        Prefect drops them silently, so `machine_typo=...` would run on the default machine.
        (`env.NAME` style keys count as their first part.)"""
        known = set(base_job_template.get("variables", {}).get("properties", {}))
        for key in values:
            top = str(key).split(".", 1)[0]
            if top not in known:
                near = closest(top, known)
                hint = (f"did you mean {near[0]!r}?" if near
                        else "`prefect work-pool inspect POOL` lists its variables")
                raise job_variable_error(
                    f"is not a variable of this work pool; {hint} (nothing was submitted)",
                    str(key),
                )
        return await super().from_template_and_values(base_job_template, values,
                                                       client=client)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        """`team: 7` in a deployment's YAML means the text "7", as in a gcpjobs job file."""
        return labels_as_text(value)

    @field_validator("command", mode="before")
    @classmethod
    def _command_as_text(cls, value: Any) -> Any:
        """A command given as a list (as gcpjobs job files write it) becomes the one string
        Prefect's configuration holds; `to_spec` splits it back into the same words."""
        if isinstance(value, list | tuple):
            return shlex.join(str(scalar_text(word)) for word in value)
        return value

    # -- the spec ---------------------------------------------------------------------------

    def to_spec(self) -> VertexJob | CloudRunJob:
        """The validated spec of this flow run's job (call after `prepare_for_flow_run`);
        SpecError, one line, naming the job variable, for anything invalid."""
        document = {key: value for key, value in self.job.items() if value is not None}
        kind = document.setdefault("kind", self.kind)
        if kind != self.kind:
            raise job_variable_error(f"the job document's kind is {kind!r}, but this is a "
                                     f"{self.kind} work pool; use kind: {self.kind}", "kind")
        # The registry chose the spec class by the kind: as in job files, the spec is not
        # asked again (its own `kind` is its default; a kind registered with a built-in spec
        # class names itself, not that class's kind).
        del document["kind"]
        origins: dict[str, str] = {}
        if "name" not in document and self.name:
            document["name"] = self._job_name(self.name)
        if "command" not in document and self.command:
            try:
                document["command"] = shlex.split(self.command)
            except ValueError as exc:
                raise job_variable_error(f"cannot be split into words ({exc}); check the "
                                         "quotes", "command") from None
        document["labels"] = self._labels(document.get("labels"))
        document["env"] = self._env(document.get("env"))
        self._aliases(document, origins)
        try:
            return self.spec_class.model_validate(document)
        except SpecError as exc:
            reason = exc.reason
            if reason == _MISSING:  # the spec's words are for job files
                reason = "is required; set it on the work pool or in the deployment's job " \
                         "variables"
            raise job_variable_error(reason, _renamed(exc.field, origins)) from None

    def _job_name(self, name: str) -> str:
        """The job's name from Prefect's (the flow run's, or the `name` variable rendered with
        the flow run's context): as it is for Vertex AI, where any display name will do."""
        return name

    def _labels(self, document_labels: Any) -> dict[str, str]:
        """Prefect's labels, then the `labels` variable's, then the job document's, each made
        valid for Google Cloud; a later group wins where two give the same label."""
        prefect = {k: v for k, v in self.labels.items() if k.startswith(PREFECT_LABEL_PREFIX)}
        own = {k: v for k, v in self.labels.items() if not k.startswith(PREFECT_LABEL_PREFIX)}
        merged: dict[str, str] = {}
        merged.update(_clean_labels(prefect, "labels"))
        merged.update(_clean_labels(own, "labels"))
        merged.update(_clean_labels(_mapping(document_labels, "labels"), "labels"))
        return merged

    def _plain_env(self) -> dict[str, str]:
        """Prefect's environment and the `env` variable (set unless None)."""
        return {name: value for name, value in self.env.items() if value is not None}

    def _env(self, document_env: Any) -> dict[str, Any]:
        """The job document's env, with the flow run's over it: PREFECT__FLOW_RUN_ID and the
        like are per run, and a template must not pin them."""
        return {**_mapping(document_env, "env"), **self._plain_env()}

    def _aliases(self, document: dict[str, Any], origins: dict[str, str]) -> None:
        """Translate prefect-gcp's variables into the job document's fields."""

    def _alias(self, document: dict[str, Any], origins: dict[str, str], target: str,
               sources: list[tuple[str, Any, Normalizer]]) -> None:
        """Set `target` from our field (in the document) or the aliases in `sources`."""
        picked = _pick([(target, document.pop(target, None), sources[0][2]), *sources])
        if picked is None:
            return
        variable, value = picked
        document[target] = value
        if variable != target:
            origins[target] = variable

    # -- clients ----------------------------------------------------------------------------

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for AsyncVertexClient / AsyncCloudRunClient: `project` (the job's,
        else the credentials block's, else its key's; None lets the client find the
        configured one), `region`, `credentials` (google-auth credentials from the block, the
        same object for the same key on every call; None: Application Default Credentials)
        `credentials_file` (always None: a key file is read here, into `credentials`) and
        `poll_interval` (`job_watch_poll_interval`: the shared watcher's interval for this
        client's jobs; None lets it adapt).

        Needs only the job document and the block, not `to_spec`: cancelling a job must work
        even for a configuration that no longer validates. CredentialsError (one line) for a
        block whose key cannot be used."""
        project = self.job.get("project")
        if project is None and self.credentials is not None:
            project = self.credentials.project_id()
        region = self.job.get("region") or self.spec_class.model_fields["region"].default
        credentials = self.credentials.get_credentials() if self.credentials else None
        return {
            "project": None if project is None else str(scalar_text(project)),
            "region": str(region),
            "credentials": credentials,
            "credentials_file": None,
            "poll_interval": self.job_watch_poll_interval,
        }


class VertexJobConfiguration(GcpJobsJobConfiguration):
    """A flow run as a Vertex AI custom job (work pool type `gcpjobs-vertex`)."""

    kind: ClassVar[str] = "vertex"

    maximum_run_time_hours: float | None = Field(
        default=None, description="prefect-gcp's name for maximum_run_time, in hours.")
    service_account_name: str | None = Field(
        default=None, description="prefect-gcp's name for service_account.")
    scheduling: dict[str, Any] | None = Field(
        default=None, description="prefect-gcp's CustomJob Scheduling options.")
    enable_dashboard_access: bool | None = Field(
        default=None, description="prefect-gcp's dashboard access; not supported yet.")

    def _aliases(self, document: dict[str, Any], origins: dict[str, str]) -> None:
        scheduling: dict[str, Any] = {}
        for key, value in (self.scheduling or {}).items():
            name = _SCHEDULING_KEYS.get(str(key))
            if name is None:
                raise job_variable_error(
                    "is not a Vertex AI scheduling option; use strategy, timeout, "
                    "restart_job_on_worker_restart, disable_retries or max_wait_duration",
                    f"scheduling.{key}")
            scheduling[name] = value

        hours = self.maximum_run_time_hours
        if hours is None:
            hours = document.pop("maximum_run_time_hours", None)
        document.pop("maximum_run_time_hours", None)
        picked = _pick([
            ("maximum_run_time", document.pop("maximum_run_time", None), _duration),
            ("maximum_run_time_hours", hours, _hours),
            ("scheduling.timeout", scheduling.get("timeout"), _duration),
        ])
        if picked is not None:
            variable, value = picked
            # The spec reads prefect-gcp's hours itself (and names them in its errors).
            document["maximum_run_time_hours" if variable == "maximum_run_time_hours"
                     else "maximum_run_time"] = value
            if variable == "scheduling.timeout":
                origins["maximum_run_time"] = variable

        strategy = scheduling.get("strategy")
        self._alias(document, origins, "scheduling_strategy",
                    [("scheduling.strategy", None if strategy is None else _strategy(strategy),
                      _strategy)])
        for name in ("restart_job_on_worker_restart", "disable_retries"):
            self._alias(document, origins, name, [(f"scheduling.{name}", scheduling.get(name),
                                                   _same)])
        self._alias(document, origins, "max_wait_duration",
                    [("scheduling.max_wait_duration", scheduling.get("max_wait_duration"),
                      _duration)])
        self._alias(document, origins, "service_account",
                    [("service_account_name", self.service_account_name, _same)])
        if self.enable_dashboard_access:
            raise job_variable_error("is not supported by gcpjobs yet; set it to false (the "
                                     "interactive shell is enable_web_access)",
                                     "enable_dashboard_access")


class CloudRunJobConfiguration(GcpJobsJobConfiguration):
    """A flow run as an execution of a Cloud Run job (work pool type `gcpjobs-cloud-run`)."""

    kind: ClassVar[str] = "cloud-run"

    service_account_name: str | None = Field(
        default=None, description="prefect-gcp's name for service_account.")
    vpc_connector_name: str | None = Field(
        default=None, description="prefect-gcp's name for vpc_connector.")
    env_from_secrets: dict[str, Any] | None = Field(
        default=None, description="NAME: {secret, version}: variables from Secret Manager.")
    prefect_api_key_secret: dict[str, Any] | None = Field(
        default=None, description="The Secret Manager secret holding PREFECT_API_KEY.")
    prefect_api_auth_string_secret: dict[str, Any] | None = Field(
        default=None, description="The Secret Manager secret holding PREFECT_API_AUTH_STRING.")
    cloudsql_instances: list[str] | None = Field(
        default=None, description="prefect-gcp's Cloud SQL connections; not supported yet.")

    def _job_name(self, name: str) -> str:
        """A valid Cloud Run job id from the flow run's name (`My_Flow` -> `my-flow`); the
        request builder adds a unique suffix unless keep_job is set."""
        return suggest_job_name(name)

    def _secrets(self) -> dict[str, tuple[str, SecretRef]]:
        """NAME -> (the variable that named it, its SecretRef), from env_from_secrets and the
        two Prefect secrets; one line for a malformed reference (values never echoed)."""
        secrets: dict[str, tuple[str, SecretRef]] = {}
        for name, raw in _mapping(self.env_from_secrets, "env_from_secrets").items():
            variable = f"env_from_secrets.{name}"
            secrets[str(name)] = (variable, _secret_ref(raw, variable))
        for name, variable in PREFECT_SECRET_ENV.items():
            raw = getattr(self, variable)
            if raw is None:
                continue
            ref = _secret_ref(raw, variable)
            if name in secrets and secrets[name][1] != ref:
                raise job_variable_error(f"{variable} and {secrets[name][0]} name different "
                                         f"secrets for {name}; set only one of them")
            secrets[name] = (variable, ref)
        return secrets

    def _env(self, document_env: Any) -> dict[str, Any]:
        """Plain values (the document's, then the flow run's), then secret references, which
        replace a plain value of the same name: that is how the worker's PREFECT_API_KEY
        becomes a reference. A Prefect credential left plain is refused."""
        given = _mapping(document_env, "env")
        plain = {k: v for k, v in given.items() if not isinstance(v, Mapping | SecretRef)}
        references = {k: v for k, v in given.items() if isinstance(v, Mapping | SecretRef)}
        env: dict[str, Any] = {**plain, **self._plain_env(), **references}
        env.update({name: ref for name, (_, ref) in self._secrets().items()})
        for name, variable in PREFECT_SECRET_ENV.items():
            value = env.get(name)
            if isinstance(value, str) and value:
                # Neither the value nor any part of it is named here.
                raise job_variable_error(
                    f"is not set, but the flow run's environment has {name}, which Cloud Run "
                    "would get as a plain value in the job; store it in Secret Manager and set "
                    f"`{variable}: {{secret: NAME, version: latest}}` on the work pool or "
                    "deployment", variable)
        return env

    def _aliases(self, document: dict[str, Any], origins: dict[str, str]) -> None:
        self._alias(document, origins, "service_account",
                    [("service_account_name", self.service_account_name, _same)])
        self._alias(document, origins, "vpc_connector",
                    [("vpc_connector_name", self.vpc_connector_name, _same)])
        if self.cloudsql_instances:
            raise job_variable_error("Cloud SQL connections are not supported by gcpjobs yet; "
                                     "leave it empty and connect with the Cloud SQL connectors "
                                     "from the flow's code", "cloudsql_instances")
        stage = document.get("launch_stage")
        if isinstance(stage, str) and stage.strip().upper() == _UNSET_LAUNCH_STAGE:
            del document["launch_stage"]


def _secret_ref(raw: Any, variable: str) -> SecretRef:
    if isinstance(raw, SecretRef):
        return raw
    if not isinstance(raw, Mapping):
        raise job_variable_error(f"must be {{secret: NAME, version: latest}}, not "
                                 f"{type_name(raw)}", variable)
    try:
        return SecretRef.model_validate(dict(raw))
    except SpecError as exc:
        field = f"{variable}.{exc.field}" if exc.field else variable
        raise job_variable_error(exc.reason, field) from None

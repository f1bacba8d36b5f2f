"""`CloudRunJob`: a Cloud Run job (Admin API v2), validated before anything is sent.

One container, run as `task_count` tasks, at most `parallelism` at a time; each task attempt
may run for `timeout` and is retried up to `max_retries` times. Field names follow gcloud's
flags (`--tasks` is `task_count`, `--vpc-connector`, `--network`, `--gpu-type`) and the v2
protos. Limits come from reference §4.5 (google-runtime-contract.md) and the docs it cites.

By default the Job resource exists only for one run (`keep_job: false`): gcpjobs creates it
under a fresh id, runs it once and deletes it. With `keep_job: true` the job keeps its `name`,
so that submitting again updates and re-runs the same job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from gcpjobs.errors import SpecError
from gcpjobs.specs.base import (
    Spec,
    WholeNumber,
    api_name,
    did_you_mean,
    parse_duration,
    scalar_text,
    shown,
    type_name,
)
from gcpjobs.specs.container import check_env_names, check_service_account, env_values
from gcpjobs.specs.fields import (
    Command,
    Image,
    Labels,
    ProjectId,
    Region,
    Text,
    TextList,
    each_matching,
    matching,
)

KIND: Final = "cloud-run"

# Job ids are RFC 1035 labels (at most 63 characters). Executions are named
# `{job}-{5 characters}` (`sample-job-mdw84`, reference §4.6) and must fit the same limit,
# so gcpjobs keeps job ids 6 characters shorter.
MAX_RESOURCE_NAME_LENGTH = 63
EXECUTION_SUFFIX_LENGTH = len("-mdw84")
MAX_JOB_NAME_LENGTH = MAX_RESOURCE_NAME_LENGTH - EXECUTION_SUFFIX_LENGTH

DEFAULT_TIMEOUT = timedelta(seconds=600)  # TaskTemplate.timeout: "Defaults to 600 seconds"
MAX_TIMEOUT = timedelta(hours=24)
# Up to 168 h is possible, but in Preview: only for jobs that opt into a pre-GA launch stage.
MAX_PREVIEW_TIMEOUT = timedelta(hours=168)
MAX_GPU_TIMEOUT = timedelta(hours=1)  # "tasks using GPUs max 1 h" (task-timeout doc)
PREVIEW_LAUNCH_STAGES = frozenset({"ALPHA", "BETA"})
LAUNCH_STAGES = ("GA", "BETA", "ALPHA", "EARLY_ACCESS")

MAX_RETRIES = 10
MAX_TASK_COUNT = 10_000
MAX_ENV_VARS = 1000  # per container (environment-variables doc)
# run.v2 EnvVar: "the maximum length is 32768 bytes" (value), "Must not exceed 32768
# characters" (name). A longer one would fail every task attempt at exec time instead.
MAX_ENV_VALUE_BYTES = 32_768

CPU_VALUES = ("1", "2", "4", "8")  # ResourceRequirements: "The only supported values"
GIB = 1024**3
MIB = 1024**2
MIN_MEMORY = 512 * MIB
MAX_MEMORY = 32 * GIB
# Least memory each CPU count needs (proto: "Setting 4 CPU requires at least 2Gi").
MIN_MEMORY_FOR_CPU = {"1": 0, "2": 0, "4": 2 * GIB, "8": 4 * GIB}
# Most memory each CPU count can be given (memory-limits doc: 4 GiB per CPU).
MAX_MEMORY_FOR_CPU = {"1": 4 * GIB, "2": 8 * GIB, "4": 16 * GIB, "8": 32 * GIB}
DEFAULT_CPU = "1"  # what Cloud Run gives a job that sets no CPU limit

GPU_TYPES = ("nvidia-l4",)
GPU_MIN_CPU = 4
GPU_MIN_MEMORY = 16 * GIB

VPC_EGRESS = {"ALL_TRAFFIC": "all-traffic", "PRIVATE_RANGES_ONLY": "private-ranges-only"}
EXECUTION_ENVIRONMENTS = {"EXECUTION_ENVIRONMENT_GEN1": "gen1",
                          "EXECUTION_ENVIRONMENT_GEN2": "gen2", "GEN1": "gen1", "GEN2": "gen2"}

# v2 refuses labels in these namespaces (reference §4.2); sanitising would only hide that.
RESERVED_LABEL_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com",
                             "serving.knative.dev", "autoscaling.knative.dev")
# Set by Cloud Run in every task (reference §4.6), so a job must not set them itself.
RESERVED_ENV_NAMES = frozenset({
    "CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT",
    "CLOUD_RUN_TASK_COUNT",
})

_JOB_NAME = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?\Z")
# Secret Manager: ids are 1-255 letters, digits, '_' and '-'; versions 'latest', a number or
# an alias (a label-like name).
_SECRET_ID = r"[A-Za-z0-9_-]{1,255}"
_SECRET = re.compile(rf"{_SECRET_ID}\Z|projects/[a-z0-9.:-]+/secrets/{_SECRET_ID}\Z")
_SECRET_VERSION = re.compile(r"latest\Z|[1-9][0-9]*\Z|[a-z][a-z0-9_-]{0,62}\Z")
_RESOURCE = r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
_CONNECTOR = re.compile(
    rf"[a-z](?:[-a-z0-9]{{0,23}}[a-z0-9])?\Z|projects/[a-z0-9.:-]+/locations/[a-z0-9-]+/connectors/{_RESOURCE}\Z")
_NETWORK = re.compile(rf"{_RESOURCE}\Z|projects/[a-z0-9.:-]+/global/networks/{_RESOURCE}\Z")
_SUBNETWORK = re.compile(
    rf"{_RESOURCE}\Z|projects/[a-z0-9.:-]+/regions/[a-z0-9-]+/subnetworks/{_RESOURCE}\Z")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\Z")
_MEMORY_UNITS = {None: 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
                 "Ki": 1024, "Mi": MIB, "Gi": GIB, "Ti": 1024**4}
_NAME_RULE = ("use lowercase letters, digits and hyphens, starting with a letter and not "
              "ending with a hyphen")


def memory_bytes(value: str) -> int:
    """`"512Mi"` -> 536870912. The value must already be valid (see `_check_memory`)."""
    match = _MEMORY.match(value)
    assert match is not None, value
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


def hours_text(duration: timedelta) -> str:
    """`timedelta(hours=25)` -> "25 h" (clearer than "1 day, 1:00:00" for a limit in hours)."""
    return f"{duration.total_seconds() / 3600:g} h"


def gib_text(size: int) -> str:
    return f"{size / GIB:g}Gi"


def suggest_job_name(value: str) -> str:
    """A valid job id close to `value` (`My_Job` -> `my-job`), for hints and file names."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    cleaned = re.sub(r"^[^a-z]+", "", cleaned)
    return cleaned[:MAX_JOB_NAME_LENGTH].rstrip("-") or "gcpjobs-job"


def _enum_value(value: Any, names: Mapping[str, str], what: str, choices: str) -> Any:
    """A lower-case choice from itself or its API enum name (`ALL_TRAFFIC` -> `all-traffic`)."""
    if not isinstance(value, str):
        return value
    key = api_name(value)
    if key in names:
        return names[key]
    raise SpecError(f"{shown(value)} is not {what}; use {choices}")


def check_secret_name(value: str) -> str:
    if _SECRET.match(value):
        return value
    # Not echoed: a user who pasted the secret itself here must not see it in a log.
    raise SpecError("is not a Secret Manager secret name; give its name (letters, digits, "
                    "'_' and '-') or projects/PROJECT/secrets/NAME")


def check_secret_version(value: str) -> str:
    if _SECRET_VERSION.match(value):
        return value
    raise SpecError("is not a secret version; use 'latest', a version number like 3, or "
                    "an alias")


class SecretRef(Spec):
    """A Secret Manager secret used as an environment variable's value.

    `secret` is the secret's name (same project as the job) or `projects/P/secrets/NAME`;
    `version` is `latest`, a version number or an alias. The reference itself is not secret.
    """

    secret: Annotated[str, AfterValidator(check_secret_name)]
    version: Annotated[Text, AfterValidator(check_secret_version)] = "latest"


def to_cloud_run_env(value: Any) -> Any:
    """NAME -> text or SecretRef, from a mapping or from the API's list of EnvVar entries.

    Secret references are built here (not by pydantic's union) so that an error names the
    variable instead of pydantic's union branches. Values are never echoed: they may be secret.
    """
    if isinstance(value, list | tuple):
        value = dict(_env_entry(entry) for entry in value)
    env: dict[Any, Any] = {}
    for name, raw in env_values(value):
        if isinstance(raw, SecretRef):
            env[name] = raw
        elif isinstance(raw, Mapping):
            env[name] = _secret_ref(name, raw)
        elif isinstance(raw, list | tuple):
            raise SpecError(f"variable {name!r} must be text or {{secret: NAME, version: V}}, "
                            f"not {type_name(raw)}; quote structured values (e.g. as JSON)")
        else:
            env[name] = scalar_text(raw)
    return env


def _env_entry(entry: Any) -> tuple[Any, Any]:
    form = ("as a list, each entry must be {name: NAME, value: VALUE} or {name: NAME, "
            "value_source: {secret_key_ref: {secret: S, version: V}}}")
    if not (isinstance(entry, Mapping) and "name" in entry):
        raise SpecError(f"{form}; or write env as `NAME: value` lines")
    keys = set(entry) - {"name"}
    if keys <= {"value"}:
        return entry["name"], entry.get("value", "")
    if len(keys) == 1 and keys <= {"value_source", "valueSource"}:
        source = entry[keys.pop()]
        ref = None
        if isinstance(source, Mapping) and len(source) == 1:
            ref = source.get("secret_key_ref", source.get("secretKeyRef"))
        if isinstance(ref, Mapping):
            return entry["name"], ref
    raise SpecError(f"variable {entry['name']!r}: {form}")


def _secret_ref(name: Any, raw: Mapping[Any, Any]) -> SecretRef:
    try:
        return SecretRef.model_validate(raw)
    except SpecError as exc:
        raise SpecError(f"variable {name!r}: {exc}") from None


def check_job_name(value: str) -> str:
    if not value:
        raise SpecError("must not be empty; give the job a name or remove the field")
    if len(value) > MAX_JOB_NAME_LENGTH:
        raise SpecError(f"is {len(value)} characters long; gcpjobs allows at most "
                        f"{MAX_JOB_NAME_LENGTH} so that execution names fit Cloud Run's "
                        f"{MAX_RESOURCE_NAME_LENGTH}, use a shorter name")
    if not _JOB_NAME.match(value):
        raise SpecError(f"{shown(value)} is not a Cloud Run job name; {_NAME_RULE} "
                        f"(e.g. {suggest_job_name(value)!r})")
    return value


def check_env(value: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
    check_env_names(value, service="Cloud Run", limit=MAX_ENV_VARS,
                    reserved=RESERVED_ENV_NAMES)
    for name, entry in value.items():
        size = len(entry.encode("utf-8")) if isinstance(entry, str) else 0
        if size > MAX_ENV_VALUE_BYTES or len(name) > MAX_ENV_VALUE_BYTES:
            what = f"its value is {size:,} bytes" if size > MAX_ENV_VALUE_BYTES else (
                f"its name is {len(name):,} characters")
            raise SpecError(
                f"{name[:40]}: {what}; Cloud Run allows {MAX_ENV_VALUE_BYTES:,} at most. "
                "Put large data in a file (gs://...) or a Secret Manager secret and pass "
                "its name"
            )
    return value


def cpu_value(value: Any) -> Any:
    """`2`, `2.0`, `"2000m"` -> "2", one of the CPU counts Cloud Run jobs offer."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if text.endswith("m") and text[:-1].isdigit() and int(text[:-1]) % 1000 == 0:
        text = str(int(text[:-1]) // 1000)  # millicores: "2000m" is "2"
    if text in CPU_VALUES:
        return text
    raise SpecError(f"{shown(value)} CPU is not available for Cloud Run jobs; use "
                    f"{', '.join(CPU_VALUES[:-1])} or {CPU_VALUES[-1]}")


def memory_value(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value  # numbers and others: the type check says "put it in quotes"
    text = value.strip()
    if not _MEMORY.match(text):
        raise SpecError(f"{shown(value)} is not a memory size; write it like 512Mi or 4Gi")
    size = memory_bytes(text)
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise SpecError(f"{text} is not allowed; use between 512Mi and "
                        f"{gib_text(MAX_MEMORY)}")
    return text


def parse_timeout(value: Any) -> timedelta:
    timeout = parse_duration(value)
    if timeout < timedelta(seconds=1):
        raise SpecError(f"must be at least 1 second, got {shown(value)}; e.g. '10m'")
    if timeout > MAX_PREVIEW_TIMEOUT:
        raise SpecError(f"{hours_text(timeout)} is longer than Cloud Run's "
                        f"{MAX_PREVIEW_TIMEOUT.days * 24} hours; check the unit (numbers "
                        "are seconds)")
    return timeout


def check_retries(value: int) -> int:
    if 0 <= value <= MAX_RETRIES:
        return value
    raise SpecError(f"must be between 0 and {MAX_RETRIES}, got {value}; Cloud Run retries "
                    f"a failed task at most {MAX_RETRIES} times")


def check_task_count(value: int) -> int:
    if 1 <= value <= MAX_TASK_COUNT:
        return value
    raise SpecError(f"must be between 1 and {MAX_TASK_COUNT}, got {value}")


def check_parallelism(value: int) -> int:
    if value >= 0:
        return value
    raise SpecError(f"must be 0 (as many as possible) or more, got {value}")


def refuse_reserved_labels(value: Any) -> Any:
    """Labels Cloud Run keeps for itself are refused (sanitising would only hide them)."""
    if not isinstance(value, Mapping):
        return value
    for key in value:
        namespace = str(key).partition("/")[0]
        if key == "cloud.googleapis.com/location":
            raise SpecError(f"label {key!r} is Cloud Run's own; set the region field instead")
        if "/" in str(key) and namespace in RESERVED_LABEL_NAMESPACES:
            raise SpecError(f"label {key!r} is in the {namespace} namespace, which Cloud "
                            "Run reserves; remove it or drop the namespace")
    return value


def gpu_type_name(value: Any) -> Any:
    """`NVIDIA_L4` -> `nvidia-l4`; an empty value means no GPU."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower().replace("_", "-")
    if not name:
        return None
    if name in GPU_TYPES:
        return name
    hint = did_you_mean(name, GPU_TYPES, n=1, otherwise=f"use {GPU_TYPES[0]}")
    raise SpecError(f"{shown(value)} is not a GPU type Cloud Run jobs offer; {hint}")


def launch_stage_name(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    stage = api_name(value)
    if stage in LAUNCH_STAGES:
        return stage
    raise SpecError(f"{shown(value)} is not a launch stage; use {', '.join(LAUNCH_STAGES)}")


# -- field types ----------------------------------------------------------------------------

JobName = Annotated[Text, AfterValidator(check_job_name)]
CloudRunEnv = Annotated[dict[str, str | SecretRef], BeforeValidator(to_cloud_run_env),
                        AfterValidator(check_env)]
Cpu = Annotated[str | None, BeforeValidator(cpu_value)]
Memory = Annotated[str | None, BeforeValidator(memory_value)]
"""A memory size like 512Mi or 4Gi (Kubernetes quantities), between 512Mi and 32Gi."""
TaskTimeout = Annotated[timedelta, BeforeValidator(parse_timeout)]
RunnerAccount = Annotated[
    str | None, AfterValidator(partial(check_service_account, example_user="runner"))]
Connector = Annotated[str | None, matching(
    _CONNECTOR, "is not a Serverless VPC Access connector; give its name or "
    "projects/PROJECT/locations/REGION/connectors/NAME")]
VpcEgress = Annotated[str | None, BeforeValidator(partial(
    _enum_value, names=VPC_EGRESS, what="a VPC egress setting",
    choices="all-traffic or private-ranges-only"))]
Network = Annotated[str | None, matching(
    _NETWORK, "is not a VPC network; give its name or projects/PROJECT/global/networks/NAME")]
Subnetwork = Annotated[str | None, matching(
    _SUBNETWORK, "is not a subnetwork; give its name or "
    "projects/PROJECT/regions/REGION/subnetworks/NAME")]
NetworkTags = Annotated[TextList, each_matching(
    re.compile(rf"{_RESOURCE}\Z"), f"is not a network tag; {_NAME_RULE}")]
CloudRunLabels = Annotated[Labels, BeforeValidator(refuse_reserved_labels)]
GpuType = Annotated[str | None, BeforeValidator(gpu_type_name)]
LaunchStage = Annotated[str | None, BeforeValidator(launch_stage_name)]
ExecutionEnvironment = Annotated[str | None, BeforeValidator(partial(
    _enum_value, names=EXECUTION_ENVIRONMENTS, what="an execution environment",
    choices="gen1 or gen2"))]


class CloudRunJob(Spec):
    """A Cloud Run job: one container image run as `task_count` tasks."""

    # The kind registry's name for this spec (`gcpjobs.kinds`), declared as VertexJob's is.
    kind: Literal["cloud-run"] = KIND

    name: JobName | None = None
    region: Region = "us-central1"
    project: ProjectId = None

    image: Image
    command: Command = Field(default_factory=list)
    args: TextList = Field(default_factory=list)
    env: CloudRunEnv = Field(default_factory=dict)

    cpu: Cpu = None
    memory: Memory = None
    timeout: TaskTimeout = DEFAULT_TIMEOUT
    max_retries: Annotated[WholeNumber, AfterValidator(check_retries)] = 3
    task_count: Annotated[WholeNumber, AfterValidator(check_task_count)] = 1
    parallelism: Annotated[WholeNumber, AfterValidator(check_parallelism)] = 0

    service_account: RunnerAccount = None
    vpc_connector: Connector = None
    vpc_egress: VpcEgress = None
    network: Network = None
    subnetwork: Subnetwork = None
    network_tags: NetworkTags = Field(default_factory=list)
    labels: CloudRunLabels = Field(default_factory=dict)

    gpu_type: GpuType = None
    gpu_count: WholeNumber | None = None
    keep_job: bool = False
    launch_stage: LaunchStage = None
    execution_environment: ExecutionEnvironment = None

    # -- input conversion -------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _check_kind(cls, data: Any) -> Any:
        """A wrong `kind` is refused first, in Cloud Run's words (before the field's own
        Literal check, which would word it as pydantic does and report it after others)."""
        if isinstance(data, Mapping) and "kind" in data and data["kind"] != KIND:
            raise SpecError(f"must be {KIND!r} for a Cloud Run job, got {shown(data['kind'])}",
                            field="kind")
        return data

    # -- rules across fields ---------------------------------------------------------------

    @model_validator(mode="after")
    def _check_combinations(self) -> CloudRunJob:
        if self.parallelism > self.task_count:
            raise SpecError(f"{self.parallelism} is more than task_count ({self.task_count}); "
                            "use at most task_count, or 0 for as many as possible",
                            field="parallelism")
        self._check_gpu()
        self._check_resources()
        self._check_timeout()
        self._check_network_settings()
        return self

    def _check_gpu(self) -> None:
        if self.gpu_type is None:
            if self.gpu_count not in (None, 0):
                raise SpecError(f"gpu_count is {self.gpu_count} but no gpu_type is set; set "
                                f"gpu_type: {GPU_TYPES[0]} or remove gpu_count",
                                field="gpu_type")
            self._fill_in(gpu_count=None)
            return
        if self.gpu_count is None:
            self._fill_in(gpu_count=1)
        elif self.gpu_count != 1:
            raise SpecError(f"must be 1, got {self.gpu_count}; Cloud Run gives a job instance "
                            "exactly one GPU (use more tasks for more GPUs)", field="gpu_count")
        if self.cpu is None or int(self.cpu) < GPU_MIN_CPU:
            raise SpecError(f"a GPU needs at least {GPU_MIN_CPU} CPU; set cpu: {GPU_MIN_CPU} "
                            "or 8", field="cpu")
        if self.memory is None or memory_bytes(self.memory) < GPU_MIN_MEMORY:
            raise SpecError(f"a GPU needs at least {gib_text(GPU_MIN_MEMORY)} of memory; set "
                            f"memory: {gib_text(GPU_MIN_MEMORY)} or more", field="memory")

    def _check_resources(self) -> None:
        cpu = self.cpu or DEFAULT_CPU
        if self.memory is None:
            if MIN_MEMORY_FOR_CPU[cpu]:
                raise SpecError(f"{cpu} CPU needs at least {gib_text(MIN_MEMORY_FOR_CPU[cpu])} "
                                f"of memory; set memory: {gib_text(MIN_MEMORY_FOR_CPU[cpu])} "
                                "or more", field="memory")
            return
        size = memory_bytes(self.memory)
        if size < MIN_MEMORY_FOR_CPU[cpu]:
            raise SpecError(f"{self.memory} is too little for {cpu} CPU; use at least "
                            f"{gib_text(MIN_MEMORY_FOR_CPU[cpu])}", field="memory")
        if size > MAX_MEMORY_FOR_CPU[cpu]:
            needed = next(c for c in CPU_VALUES if MAX_MEMORY_FOR_CPU[c] >= size)
            given = "" if self.cpu else " (the default)"
            raise SpecError(f"{self.memory} is more than {cpu} CPU{given} can have (at most "
                            f"{gib_text(MAX_MEMORY_FOR_CPU[cpu])}); set cpu: {needed} or "
                            "more, or use less memory", field="memory")

    def _check_timeout(self) -> None:
        if self.gpu_type is not None and self.timeout > MAX_GPU_TIMEOUT:
            raise SpecError(f"{hours_text(self.timeout)} is too long for a GPU task; Cloud Run allows at "
                            "most 1 hour per attempt with a GPU, use '1h' or less",
                            field="timeout")
        if self.timeout > MAX_TIMEOUT and self.launch_stage not in PREVIEW_LAUNCH_STAGES:
            raise SpecError(f"{hours_text(self.timeout)} is longer than 24 hours; task timeouts over 24 h "
                            "(up to 168 h) are a Cloud Run Preview feature: set launch_stage: "
                            "BETA to use them, or use '24h' or less", field="timeout")

    def _check_network_settings(self) -> None:
        direct_vpc = self.network is not None or self.subnetwork is not None
        if self.vpc_connector is not None and direct_vpc:
            field = "network" if self.network is not None else "subnetwork"
            raise SpecError("cannot be used together with vpc_connector; use either a "
                            "Serverless VPC Access connector or Direct VPC egress "
                            "(network/subnetwork)", field=field)
        if self.network_tags and not direct_vpc:
            raise SpecError("need Direct VPC egress; set network or subnetwork, or remove "
                            "network_tags", field="network_tags")
        if self.vpc_egress is not None and self.vpc_connector is None and not direct_vpc:
            raise SpecError("needs a VPC; set vpc_connector or network, or remove vpc_egress",
                            field="vpc_egress")

    # -- derived views ---------------------------------------------------------------------

    def plain_env(self) -> dict[str, str]:
        """The variables given as text (not Secret Manager references)."""
        return {name: value for name, value in self.env.items() if isinstance(value, str)}

    def preview(self, fmt: str = "yaml") -> str:
        """The exact CreateJob request this job becomes, as "yaml" or "json", secrets
        redacted (see `gcpjobs.protos.cloudrun.preview`)."""
        from gcpjobs.kinds import kind_entry

        # Through the kind's entry: the request layer sits above the specs.
        return str(kind_entry(self.kind).load("preview")(self, fmt))

"""`VertexJob`: a Vertex AI custom training job, validated before anything is sent.

Field names and defaults follow prefect-gcp's Vertex AI worker and its
`VertexAICustomTrainingJob` block where they mean the same thing (`machine_type`
"n1-standard-4", `boot_disk_type` "pd-ssd", `boot_disk_size_gb` 100, `maximum_run_time`,
`maximum_run_time_hours` as an input alias), so that users can move their settings over.

The top-level container, machine and disk fields describe worker pool 0, the primary replica
(always one replica). `extra_worker_pools` are pools 1-3; a pool's unset fields are the
primary's (see `ResolvedPool`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Annotated, Any, ClassVar, Literal

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
from gcpjobs.specs.machines import (
    ACCELERATOR_TYPES,
    BOOT_DISK_SIZE_GB_RANGE,
    BOOT_DISK_TYPES,
    MACHINE_TYPES,
    accelerator_problem,
    machines_for,
)

SchedulingStrategy = Literal["STANDARD", "SPOT", "FLEX_START"]

DEFAULT_MAXIMUM_RUN_TIME = timedelta(days=7)  # Vertex's own default (`Scheduling.timeout`)
# The proto documents only the 7-day default, not a maximum. We accept up to 28 days so that
# long runs on reservations remain possible, and refuse more: such a value is nearly always a
# unit mistake (minutes given as hours), and an idle GPU job that long is an expensive one.
MAX_MAXIMUM_RUN_TIME = timedelta(days=28)
MAX_ENV_VARS = 100  # `ContainerSpec.env`: "Maximum limit is 100."
MAX_EXTRA_WORKER_POOLS = 3  # pools 1-3: workers, parameter/reduction servers, evaluators
MAX_DISPLAY_NAME_LENGTH = 128

_NETWORK = re.compile(r"projects/[0-9]+/global/networks/[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_RESOURCE_ID = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_GCS_URI = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?\Z")
_MACHINE_DOCS = "https://cloud.google.com/vertex-ai/docs/training/configure-compute"


# -- field checks shared by the primary pool and the extra pools ----------------------------


def to_env(value: Any) -> Any:
    """A mapping NAME -> text. Also accepts the API's list of `{name, value}` entries."""
    if isinstance(value, list | tuple):
        entries: dict[Any, Any] = {}
        for entry in value:
            if not (isinstance(entry, Mapping) and set(entry) <= {"name", "value"}
                    and "name" in entry):
                raise SpecError("as a list, each entry must be {name: NAME, value: VALUE}; "
                                "or write env as `NAME: value` lines")
            entries[entry["name"]] = entry.get("value", "")
        value = entries
    env: dict[Any, Any] = {}
    for name, raw in env_values(value):
        if isinstance(raw, Mapping | list | tuple):
            raise SpecError(f"variable {name!r} must be text, not {type_name(raw)}; "
                            "quote structured values (e.g. as JSON)")
        env[name] = scalar_text(raw)
    return env


def check_env(env: dict[str, str]) -> dict[str, str]:
    check_env_names(env, service="Vertex AI", limit=MAX_ENV_VARS)
    return env


def check_machine_type(value: str) -> str:
    name = value.strip().lower()
    if name in MACHINE_TYPES:
        return name
    hint = did_you_mean(name, MACHINE_TYPES, otherwise=f"see {_MACHINE_DOCS}")
    raise SpecError(f"{shown(value)} is not a Vertex AI training machine type; {hint}")


def normalize_accelerator(value: Any) -> Any:
    """`nvidia-tesla-t4` -> `NVIDIA_TESLA_T4`; an empty value means no accelerator."""
    if not isinstance(value, str):
        return value
    name = api_name(value)
    if not name or name == "ACCELERATOR_TYPE_UNSPECIFIED":
        return None
    if name in ACCELERATOR_TYPES:
        return name
    hint = did_you_mean(name, ACCELERATOR_TYPES,
                        otherwise=f"use one of {', '.join(ACCELERATOR_TYPES)}")
    raise SpecError(f"{shown(value)} is not a Vertex AI accelerator type; {hint}")


def check_boot_disk_type(value: str) -> str:
    if value in BOOT_DISK_TYPES:
        return value
    raise SpecError(f"{shown(value)} is not a boot disk type; use one of {', '.join(BOOT_DISK_TYPES)}")


def check_boot_disk_size(value: int) -> int:
    low, high = BOOT_DISK_SIZE_GB_RANGE
    if not low <= value <= high:
        raise SpecError(f"{value} is not allowed; use a size between {low} and {high} GB")
    return value


def _counts_text(counts: Sequence[int]) -> str:
    words = [str(c) for c in counts]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def resolve_accelerator(
    machine_type: str, accelerator_type: str | None, accelerator_count: int | None
) -> tuple[str | None, int | None]:
    """The accelerator a pool will really get, or a SpecError (field relative to the pool).

    A type without a count means one (or the machine's bundled count); a count of 0 without a
    type means none; a GPU-bundled machine (a2-highgpu-1g, g2-standard-4 ...) gets its GPUs
    filled in. Whether the result is allowed is decided by `machines.accelerator_problem`, the
    rule the emulator applies too.
    """
    machine = MACHINE_TYPES[machine_type]
    bundled = machine.bundled
    if accelerator_type is None and accelerator_count in (None, 0):
        return bundled if bundled else (None, None)
    if accelerator_type is None and bundled and accelerator_count == bundled[1]:
        return bundled
    if accelerator_type is not None and accelerator_count is None:
        same_as_bundled = bundled is not None and bundled[0] == accelerator_type
        accelerator_count = bundled[1] if bundled is not None and same_as_bundled else 1
    if accelerator_problem(machine_type, accelerator_type, accelerator_count or 0) is None:
        return accelerator_type, accelerator_count
    raise _accelerator_error(machine_type, accelerator_type, accelerator_count or 0)


def _accelerator_error(machine_type: str, accelerator_type: str | None, count: int) -> SpecError:
    machine = MACHINE_TYPES[machine_type]
    if machine.bundled is not None:
        name, bundled_count = machine.bundled
        fitting = [m.name for m in MACHINE_TYPES.values()
                   if m.bundled == (accelerator_type or name, count)]
        other = f", or use {fitting[0]}" if fitting else ""
        field = "accelerator_count" if accelerator_type in (None, name) else "accelerator_type"
        return SpecError(f"{machine_type} comes with exactly {bundled_count} {name}; leave "
                         f"accelerator_type and accelerator_count unset{other}", field=field)
    if accelerator_type is None:
        return SpecError(f"accelerator_count is {count} but no accelerator_type is set; set "
                         "accelerator_type (e.g. NVIDIA_TESLA_T4) or remove accelerator_count",
                         field="accelerator_type")
    if count <= 0:
        return SpecError(f"must be at least 1 when accelerator_type is set, got {count}; use 1 "
                         "or remove accelerator_type", field="accelerator_count")
    counts = machine.accelerators.get(accelerator_type)
    if counts is None:
        carriers = machines_for(accelerator_type)
        family = ("takes no accelerators" if not machine.accepts_accelerators
                  else f"takes {', '.join(machine.accelerators)}")
        fix = (f"use a machine type that can carry it, e.g. {', '.join(carriers[:3])}"
               if carriers else "pick another accelerator")
        return SpecError(f"{accelerator_type} cannot be attached to {machine_type} (the "
                         f"{machine.family} family {family}); {fix}", field="accelerator_type")
    return SpecError(f"must be {_counts_text(counts)} for {accelerator_type} on {machine_type}, "
                     f"got {count}", field="accelerator_count")


# -- checks of the job's own fields ---------------------------------------------------------


def check_display_name(value: str) -> str:
    if not value.strip():
        raise SpecError("must not be empty; give the job a name")
    if len(value) > MAX_DISPLAY_NAME_LENGTH:
        raise SpecError(f"is {len(value)} characters long; Vertex AI allows at most "
                        f"{MAX_DISPLAY_NAME_LENGTH}, use a shorter name")
    return value


def parse_run_time(value: Any) -> timedelta:
    run_time = parse_duration(value)
    if run_time <= timedelta(0):
        raise SpecError(f"must be longer than zero, got {shown(value)}; e.g. '2h'")
    if run_time > MAX_MAXIMUM_RUN_TIME:
        raise SpecError(f"{run_time} is longer than the {MAX_MAXIMUM_RUN_TIME.days} days "
                        "gcpjobs allows; check the unit (numbers are seconds)")
    return run_time


def parse_max_wait(value: Any) -> timedelta | None:
    if value is None:
        return None
    wait = parse_duration(value)
    if wait < timedelta(0):
        raise SpecError(f"must not be negative, got {shown(value)}; 0 means wait forever")
    return wait


def strategy_name(value: Any) -> Any:
    """`spot`, `flex-start` -> the API's `SPOT`, `FLEX_START`."""
    return api_name(value) if isinstance(value, str) else value


def _check_pool_count(value: list[WorkerPool | None]) -> list[WorkerPool | None]:
    # Trailing nulls leave no pool unused in between, so they are not sent at all.
    while value and value[-1] is None:
        value = value[:-1]
    if len(value) > MAX_EXTRA_WORKER_POOLS:
        raise SpecError(f"{len(value)} extra pools given; Vertex AI has pools 1-3 (workers, "
                        "parameter servers, evaluators), remove the rest")
    return value


# -- field types: the container, machine and disk ones serve pool 0 and the extra pools ------

VertexEnv = Annotated[dict[str, str], BeforeValidator(to_env), AfterValidator(check_env)]
MachineType = Annotated[str, AfterValidator(check_machine_type)]
"""The name of a Vertex AI training machine type (`machines.MACHINE_TYPES`), any case."""
AcceleratorType = Annotated[str | None, BeforeValidator(normalize_accelerator)]
"""An `AcceleratorType` name in any case, `-` or `_`; empty or UNSPECIFIED means none."""
BootDiskType = Annotated[str, AfterValidator(check_boot_disk_type)]
BootDiskSizeGb = Annotated[WholeNumber, AfterValidator(check_boot_disk_size)]
RunTime = Annotated[timedelta, BeforeValidator(parse_run_time)]
MaxWaitDuration = Annotated[timedelta | None, BeforeValidator(parse_max_wait)]
DisplayName = Annotated[Text, AfterValidator(check_display_name)]
Strategy = Annotated[SchedulingStrategy, BeforeValidator(strategy_name)]
TrainerAccount = Annotated[
    str | None, AfterValidator(partial(check_service_account, example_user="trainer"))]
ResourceId = Annotated[str | None, matching(
    _RESOURCE_ID, "is not a resource id; use up to 63 lowercase letters, digits and hyphens, "
    "starting with a letter")]
NetworkName = Annotated[str | None, matching(
    _NETWORK, "is not a network name; write it as projects/PROJECT_NUMBER/global/networks/NETWORK")]
IpRangeNames = Annotated[TextList, each_matching(
    _RESOURCE_ID, "is not an IP range name; give the name of an address range reserved for "
    "the network")]
GcsUri = Annotated[str | None, matching(
    _GCS_URI, "is not a Cloud Storage URI; write it as gs://BUCKET/PATH")]


# -- models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedPool:
    """One worker pool with nothing left unset: what the request builder turns into a proto."""

    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: Mapping[str, str]
    machine_type: str
    accelerator_type: str | None
    accelerator_count: int | None
    boot_disk_type: str
    boot_disk_size_gb: int
    replica_count: int


class WorkerPool(Spec):
    """Worker pool 1, 2 or 3. Unset (None) fields are the primary's; `env` is merged over it.

    The primary's accelerator is inherited only with the primary's machine: a pool that sets
    its own `machine_type` gets no GPU unless it names one (or the machine bundles one).
    """

    replica_count: WholeNumber = Field(default=1, ge=1)
    image: Image | None = None
    command: Command | None = None
    args: TextList | None = None
    env: VertexEnv | None = None
    machine_type: MachineType | None = None
    accelerator_type: AcceleratorType = None
    accelerator_count: WholeNumber | None = Field(default=None, ge=0)
    boot_disk_type: BootDiskType | None = None
    boot_disk_size_gb: BootDiskSizeGb | None = None

    def resolve(self, primary: ResolvedPool) -> ResolvedPool:
        """This pool with the primary's values filled in (SpecError, field relative to it)."""
        machine_type = self.machine_type or primary.machine_type
        accelerator_type, accelerator_count = self.accelerator_type, self.accelerator_count
        # Same machine as the primary: its accelerator too, unless this pool names one.
        if self.machine_type is None and accelerator_type is None:
            accelerator_type = primary.accelerator_type
            if accelerator_count is None:
                accelerator_count = primary.accelerator_count
        accelerator = resolve_accelerator(machine_type, accelerator_type, accelerator_count)
        env = {**primary.env, **(self.env or {})}
        try:
            check_env(env)
        except SpecError as exc:
            raise SpecError(f"{exc.reason} (the primary's variables count too)", "env") from None
        return ResolvedPool(
            image=self.image or primary.image,
            command=primary.command if self.command is None else tuple(self.command),
            args=primary.args if self.args is None else tuple(self.args),
            env=env,
            machine_type=machine_type,
            accelerator_type=accelerator[0],
            accelerator_count=accelerator[1],
            boot_disk_type=self.boot_disk_type or primary.boot_disk_type,
            boot_disk_size_gb=self.boot_disk_size_gb or primary.boot_disk_size_gb,
            replica_count=self.replica_count,
        )


class VertexJob(Spec):
    """A Vertex AI custom job: pool 0 (the fields below) plus optional `extra_worker_pools`."""

    input_aliases: ClassVar[frozenset[str]] = frozenset({"maximum_run_time_hours"})
    misplaced_fields: ClassVar[Mapping[str, str]] = {
        "replica_count": "pool 0 (the job's own fields) runs one replica; give more replicas "
        "as a further pool, e.g. extra_worker_pools: [{replica_count: 4}]",
    }

    # The kind registry's name for this spec (`gcpjobs.kinds`), declared as CloudRunJob's is.
    kind: Literal["vertex"] = "vertex"
    name: DisplayName = "gcpjobs-job"
    project: ProjectId = None
    region: Region = "us-central1"

    image: Image
    command: Command = Field(default_factory=list)
    args: TextList = Field(default_factory=list)
    env: VertexEnv = Field(default_factory=dict)

    machine_type: MachineType = "n1-standard-4"
    accelerator_type: AcceleratorType = None
    accelerator_count: WholeNumber | None = Field(default=None, ge=0)
    boot_disk_type: BootDiskType = "pd-ssd"
    boot_disk_size_gb: BootDiskSizeGb = 100

    maximum_run_time: RunTime = DEFAULT_MAXIMUM_RUN_TIME
    scheduling_strategy: Strategy = "STANDARD"
    max_wait_duration: MaxWaitDuration = None
    restart_job_on_worker_restart: bool = False
    disable_retries: bool = False
    persistent_resource_id: ResourceId = None

    network: NetworkName = None
    reserved_ip_ranges: IpRangeNames = Field(default_factory=list)
    service_account: TrainerAccount = None
    labels: Labels = Field(default_factory=dict)
    enable_web_access: bool = False
    base_output_directory: GcsUri = None

    extra_worker_pools: Annotated[list[WorkerPool | None], AfterValidator(_check_pool_count)] = (
        Field(default_factory=list))

    # -- input conversion -------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _hours_alias(cls, data: Any) -> Any:
        """prefect-gcp's `maximum_run_time_hours` is accepted for `maximum_run_time`."""
        if not (isinstance(data, Mapping) and "maximum_run_time_hours" in data):
            return data
        if "maximum_run_time" in data:
            raise SpecError("give either maximum_run_time or maximum_run_time_hours, not both",
                            field="maximum_run_time_hours")
        data = dict(data)
        hours = data.pop("maximum_run_time_hours")
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise SpecError(f"must be a number of hours, got {shown(hours)}; write it like 2 "
                            "or 0.5", field="maximum_run_time_hours")
        max_hours = MAX_MAXIMUM_RUN_TIME.days * 24
        if not 0 < hours <= max_hours:
            raise SpecError(f"must be more than 0 and at most {max_hours} hours, got {hours}",
                            field="maximum_run_time_hours")
        data["maximum_run_time"] = timedelta(hours=hours)
        return data

    # -- rules across fields ---------------------------------------------------------------

    @model_validator(mode="after")
    def _check_combinations(self) -> VertexJob:
        accelerator = resolve_accelerator(
            self.machine_type, self.accelerator_type, self.accelerator_count)
        self._fill_in(accelerator_type=accelerator[0], accelerator_count=accelerator[1])
        self.resolved_pools()  # raises for a pool that does not fit
        if self.reserved_ip_ranges and self.network is None:
            raise SpecError("need a network; set network (projects/NUMBER/global/networks/NAME) "
                            "or remove reserved_ip_ranges", field="reserved_ip_ranges")
        if self.max_wait_duration is not None and self.scheduling_strategy != "FLEX_START":
            raise SpecError("only applies to scheduling_strategy FLEX_START; remove it or set "
                            "scheduling_strategy: FLEX_START", field="max_wait_duration")
        if self.persistent_resource_id and self.scheduling_strategy != "STANDARD":
            # A persistent resource's machines are already provisioned; Spot and DWS
            # (FLEX_START) are ways to provision, so the service refuses both together.
            raise SpecError(f"{self.scheduling_strategy} cannot be used on a persistent "
                            "resource; use STANDARD or remove persistent_resource_id",
                            field="scheduling_strategy")
        return self

    # -- derived views ---------------------------------------------------------------------

    def primary_pool(self) -> ResolvedPool:
        """Worker pool 0: the primary replica, exactly one."""
        return ResolvedPool(
            image=self.image,
            command=tuple(self.command),
            args=tuple(self.args),
            env=dict(self.env),
            machine_type=self.machine_type,
            accelerator_type=self.accelerator_type,
            accelerator_count=self.accelerator_count,
            boot_disk_type=self.boot_disk_type,
            boot_disk_size_gb=self.boot_disk_size_gb,
            replica_count=1,
        )

    def resolved_pools(self) -> list[ResolvedPool | None]:
        """Pools 0..3 as they will be sent; None keeps an unused position empty."""
        primary = self.primary_pool()
        pools: list[ResolvedPool | None] = [primary]
        for index, pool in enumerate(self.extra_worker_pools):
            if pool is None:
                pools.append(None)
                continue
            try:
                pools.append(pool.resolve(primary))
            except SpecError as exc:
                where = f"extra_worker_pools[{index}]"
                raise SpecError(exc.reason, f"{where}.{exc.field}" if exc.field else where) \
                    from None
        return pools

    def preview(self, fmt: str = "yaml") -> str:
        """The exact CreateCustomJob request this job becomes, as "yaml" or "json", secrets
        redacted (see `gcpjobs.protos.vertex.preview`)."""
        from gcpjobs.kinds import kind_entry

        # Through the kind's entry: the request layer sits above the specs.
        return str(kind_entry(self.kind).load("preview")(self, fmt))

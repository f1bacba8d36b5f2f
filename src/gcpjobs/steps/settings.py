"""A remote step's settings: the job spec fields it runs with, and the few that are its own.

Settings are the fields of `VertexJob` (`kind="vertex"`, the default) or `CloudRunJob`
(`kind="cloud-run"`): `machine_type`, `accelerator_type`, `scheduling_strategy`,
`persistent_resource_id`, `env`, `labels`, `cpu`, `memory`, `timeout` ... plus:

- `store`: the artifact store URL (see store.py);
- `code_dir`: the directory to ship as the code archive (default: found from the function,
  see archive.py; `False`: ship none, the image has the code);
- `python`: the image's Python command (default `python`).

`command` and `args` are the step's own (`python -m gcpjobs.steps.entrypoint RUN_URL`).

What is configured once, for every step (the first found wins):
- image: `image=` in the settings, `$GCPJOBS_STEP_IMAGE`, `steps.image` in the config file;
- store: `store=` in the settings, `$GCPJOBS_STEP_STORE`, `steps.store` in the config file,
  else the local directory `$GCPJOBS_DATA_DIR/steps` (`~/.local/share/gcpjobs/steps`).
The config file is `$GCPJOBS_CONFIG`, else `$XDG_CONFIG_HOME/gcpjobs/config.yaml`, else
`~/.config/gcpjobs/config.yaml`.

Everything is checked when the settings are made (at decoration time, and again per call for
overrides), with the spec's own checks and one-line `SpecError`s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from gcpjobs.errors import SpecError
from gcpjobs.kinds import UnknownKindError, builtin_kinds, kind_entry, known_kinds
from gcpjobs.paths import data_dir
from gcpjobs.specs.base import shown, type_name, unknown_field_message
from gcpjobs.steps.payload import ENTRYPOINT_MODULE, first_line
from gcpjobs.steps.signing import KEY_ENV, KEY_SECRET_ENV
from gcpjobs.steps.store import check_store_url

if TYPE_CHECKING:
    from gcpjobs.specs.jobfile import JobSpec

# A kind of the registry (`gcpjobs.kinds`): "vertex", "cloud-run" or a plug-in's.
Kind: TypeAlias = str
# The kinds gcpjobs serves itself; `known_kinds()` adds those registered since.
KINDS: tuple[Kind, ...] = builtin_kinds()

IMAGE_ENV = "GCPJOBS_STEP_IMAGE"
STORE_ENV = "GCPJOBS_STEP_STORE"
CONFIG_ENV = "GCPJOBS_CONFIG"
DEFAULT_PYTHON = "python"

# Settings that are the step's own rather than the job spec's.
STEP_KEYS = ("kind", "store", "code_dir", "python")
# Spec fields the step sets itself.
SET_BY_STEP = ("command", "args")
_CONFIG_KEYS = ("image", "store")
# For checks made before an image is known (at decoration time).
_PLACEHOLDER_IMAGE = "gcpjobs-step-image"
_PLACEHOLDER_RUN_URL = "/gcpjobs-step-store/runs/0"
PLACEHOLDER_KEY_SECRET = "projects/gcpjobs-local/secrets/gcpjobs-step-0/versions/1"
# Set in a step's job on the emulator, so that its entry point reaches the emulator's Secret
# Manager (the value is `gcpjobs.clients.target.EMULATOR_HOST_ENV`'s).
_EMULATOR_HOST_ENV = "GCPJOBS_EMULATOR_HOST"


def default_store() -> str:
    return str((data_dir() / "steps").resolve())


def config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".config") / "gcpjobs" / "config.yaml"


# ------------------------------------------------------------------------- configured once


@dataclass(frozen=True)
class StepConfig:
    """The image and store configured for every step (None: not configured)."""

    image: str | None = None
    store: str | None = None


def _checked_image(value: Any, field: str) -> str:
    from gcpjobs.specs.container import check_image

    if not isinstance(value, str):
        raise SpecError(f"must be an image URI, not {type_name(value)}", field=field)
    try:
        return check_image(value)
    except SpecError as error:
        raise SpecError(error.reason, field=field) from None


def _config_file_values(path: Path) -> dict[str, Any]:
    import yaml

    where = f"the config file {path}"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError(f"cannot read {where} ({error.strerror}); fix it or set "
                        f"{CONFIG_ENV} to another file") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{where} is not YAML ({first_line(str(error))}); fix it") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise SpecError(f"{where} must be a mapping with a `steps:` section, not "
                        f"{type_name(document)}")
    section = document.get("steps")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise SpecError(f"`steps` in {where} must be a mapping (image: ..., store: ...), not "
                        f"{type_name(section)}")
    for key in section:
        if key not in _CONFIG_KEYS:
            raise SpecError(f"steps.{key} in {where} "
                            f"{unknown_field_message(str(key), _CONFIG_KEYS)}")
    return {key: (value, f"steps.{key} in {where}") for key, value in section.items()}


def load_config() -> StepConfig:
    """The configured image and store: environment variables over the config file (which is
    checked whole, even where the environment overrides it)."""
    path = config_path()
    sources: list[tuple[str, Any, str]] = []  # (setting, value, where it came from)
    if path.is_file():
        sources += [(key, value, where) for key, (value, where) in _config_file_values(path).items()]
    elif os.environ.get(CONFIG_ENV):
        raise SpecError(f"{CONFIG_ENV} names {str(path)!r}, which is not a file; fix the path "
                        "or unset it")
    for key, variable in (("image", IMAGE_ENV), ("store", STORE_ENV)):
        if os.environ.get(variable, "").strip():
            sources.append((key, os.environ[variable], variable))
    checked: dict[str, str] = {}
    for key, value, where in sources:  # later sources win
        checked[key] = (_checked_image(value, where) if key == "image"
                        else check_store_url(value, field=where))
    return StepConfig(image=checked.get("image"), store=checked.get("store"))


# ------------------------------------------------------------------------------- settings


def _checked_kind(value: Any) -> Kind:
    try:
        return kind_entry(value).name
    except UnknownKindError:
        raise SpecError(f"must be {_one_of(known_kinds())}, got {shown(value)}",
                        field="kind") from None


def _one_of(kinds: tuple[str, ...]) -> str:
    """`'a' or 'b'`, `'a', 'b' or 'c'`."""
    quoted = [repr(kind) for kind in kinds]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


def _checked_python(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise SpecError(f"must be the image's Python command as one word (python, python3, "
                        f"/opt/conda/bin/python), got {shown(value)}", field="python")
    return value


def _checked_code_dir(value: Any) -> Path | Literal[False] | None:
    if value is None or value is False:
        return value
    if not isinstance(value, str | os.PathLike):
        raise SpecError(f"must be a directory, or False to ship no code, got {shown(value)}",
                        field="code_dir")
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise SpecError(f"{str(path)!r} is not a directory; give the directory your code is "
                        "imported from, or False to ship no code", field="code_dir")
    return path


@dataclass(frozen=True)
class StepSettings:
    """Checked settings. `given` is what the user passed, to merge per-call overrides into."""

    given: Mapping[str, Any]
    kind: Kind
    store: str | None
    code_dir: Path | Literal[False] | None
    python: str
    fields: Mapping[str, Any]

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> StepSettings:
        if not isinstance(values, Mapping):
            raise SpecError(f"settings must be a mapping of field names to values, not "
                            f"{type_name(values)}; e.g. {{'machine_type': 'n1-standard-8'}}")
        given = dict(values)
        kind = _checked_kind(given.get("kind", "vertex"))
        model = kind_entry(kind).load("spec_class")
        known = (set(model.model_fields) | set(STEP_KEYS)) - set(SET_BY_STEP)
        for key in given:
            if key in SET_BY_STEP:
                raise SpecError(f"is set by gcpjobs for remote steps ({DEFAULT_PYTHON} -m "
                                f"{ENTRYPOINT_MODULE} RUN_URL); remove it (python= names the "
                                "image's Python)", field=str(key))
            if key not in known:
                raise SpecError(unknown_field_message(str(key), known), field=str(key))
        store = given.get("store")
        settings = cls(
            given=given,
            kind=kind,
            store=None if store is None else check_store_url(store),
            code_dir=_checked_code_dir(given.get("code_dir")),
            python=_checked_python(given.get("python", DEFAULT_PYTHON)),
            fields={key: value for key, value in given.items() if key not in STEP_KEYS},
        )
        settings.job_spec(function_name="step", image=settings.image or _PLACEHOLDER_IMAGE,
                          run_url=_PLACEHOLDER_RUN_URL,
                          key_secret=PLACEHOLDER_KEY_SECRET)
        return settings

    def merged(self, overrides: Mapping[str, Any] | None) -> StepSettings:
        """These settings with `overrides` (field by field, as given) checked again."""
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise SpecError(f"settings must be a mapping of field names to values, not "
                            f"{type_name(overrides)}; e.g. {{'machine_type': 'n1-standard-8'}}")
        return StepSettings.parse({**self.given, **overrides})

    @property
    def image(self) -> str | None:
        image = self.fields.get("image")
        return image if isinstance(image, str) else None

    def job_spec(
        self, *, function_name: str, image: str, run_url: str, key_secret: str,
        emulator_host: str | None = None,
    ) -> JobSpec:
        """The `VertexJob` or `CloudRunJob` that runs one call (SpecError if it cannot be).

        `key_secret` is the Secret Manager version that holds the call's key (keys.py): the
        spec names it and never holds the key. `emulator_host` (the emulator's gRPC address,
        when the job runs there) lets the entry point reach the emulator's Secret Manager;
        the job's own `GCPJOBS_EMULATOR_HOST` wins."""
        from gcpjobs.specs.cloudrun import CloudRunJob, suggest_job_name
        from gcpjobs.specs.vertex import VertexJob

        data = dict(self.fields)
        short_name = function_name.rsplit(".", 1)[-1].replace("<", "").replace(">", "")
        data.setdefault("name", f"step-{short_name}")
        data["image"] = image
        data["command"] = [self.python, "-m", ENTRYPOINT_MODULE]
        data["args"] = [run_url]
        # The step's own rules follow the spec class, not the kind's name: a kind registered
        # with Cloud Run's spec class runs its steps as Cloud Run steps.
        model = kind_entry(self.kind).load("spec_class")
        if issubclass(model, CloudRunJob):
            if "name" not in self.fields:
                data["name"] = suggest_job_name(data["name"])
            data.setdefault("max_retries", 0)  # a failed call is the caller's to retry
        spec = cast("JobSpec", model.model_validate(data))
        if isinstance(spec, VertexJob) and spec.extra_worker_pools:
            raise SpecError("a remote step runs on one machine; remove extra_worker_pools "
                            "(run a VertexJob for distributed training)",
                            field="extra_worker_pools")
        if isinstance(spec, CloudRunJob) and spec.task_count != 1:
            raise SpecError(f"must be 1 for a remote step (one call runs once), got "
                            f"{spec.task_count}", field="task_count")
        for variable in (KEY_SECRET_ENV, KEY_ENV):
            if variable in spec.env:
                raise SpecError(f"{variable} is set by gcpjobs for each remote step; remove it",
                                field="env")
        env = {**spec.env, KEY_SECRET_ENV: key_secret}
        if emulator_host:
            env.setdefault(_EMULATOR_HOST_ENV, emulator_host)
        return spec.with_overrides(env=env)

"""Where requests go: real Vertex AI in a Google project, or a gcpjobs emulator.

`resolve_target()` decides once, from arguments, environment and gcloud's files, without
touching the network: it never calls `google.auth.default()` (which may probe the metadata
server); credentials are loaded only when a GCP client is built.

Order:
1. `emulator_host` or `$GCPJOBS_EMULATOR_HOST` -> that emulator (project `gcpjobs-local`
   unless one is given).
2. a Google project is configured -> GCP in that project.
3. otherwise -> the embedded emulator of the default data dir, started if none answers.

`$GCPJOBS_TARGET` (`emulator` or `gcp`; the CLI's `--emulator` sets it) forces the choice:
`emulator` skips step 2, so a configured gcloud project can never send a demo to real GCP;
`gcp` skips steps 1 and 3, and fails when no project is configured.
"""

from __future__ import annotations

import configparser
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gcpjobs.errors import GcpJobsError

TargetKind = Literal["gcp", "emulator"]

EMULATOR_HOST_ENV = "GCPJOBS_EMULATOR_HOST"
EMULATOR_REST_HOST_ENV = "GCPJOBS_EMULATOR_REST_HOST"
EMULATOR_PROJECT = "gcpjobs-local"
TARGET_ENV = "GCPJOBS_TARGET"
TARGET_KINDS: tuple[TargetKind, ...] = ("emulator", "gcp")
# The environment variables Google's libraries and gcloud read a project from, in their order.
PROJECT_ENV_VARS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT")
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"


@dataclass(frozen=True)
class Target:
    """A resolved destination. For `gcp`, `grpc_address` and `rest_endpoint` are None: the
    endpoint depends on the region (`api_endpoint(region)`)."""

    kind: TargetKind
    project: str
    grpc_address: str | None = None  # emulator: "host:port"
    rest_endpoint: str | None = None  # emulator: "http://host:port"
    credentials_file: str | None = None  # gcp: a service-account key file; None = ADC
    embedded: bool = False  # emulator started (or found) by gcpjobs itself

    @property
    def is_emulator(self) -> bool:
        return self.kind == "emulator"

    def api_endpoint(self, region: str) -> str:
        """The gRPC endpoint for `region`: `{region}-aiplatform.googleapis.com` on GCP."""
        if self.grpc_address is not None:
            return self.grpc_address
        return f"{region}-aiplatform.googleapis.com"

    def run_endpoint(self) -> str:
        """The Cloud Run Admin API (v2) endpoint: global on GCP, as gcloud and the GAPIC
        client use it (the location is in every resource name)."""
        if self.grpc_address is not None:
            return self.grpc_address
        return "run.googleapis.com"

    def describe(self) -> str:
        """One line for logs and the CLI (never contains credentials)."""
        if self.is_emulator:
            how = "embedded emulator" if self.embedded else "emulator"
            return f"{how} at {self.grpc_address} (project {self.project})"
        return f"Google Cloud project {self.project}"

    def destination(self, service: str, region: str) -> str:
        """Where a command's requests go, said before it sends anything: `emulator at
        127.0.0.1:8470` or `Vertex AI, project P, region R, as ACCOUNT`. `service` names the
        API ("Vertex AI", "Cloud Run"). Read from local files only; never a secret."""
        if self.is_emulator:
            return f"emulator at {self.grpc_address} (project {self.project}, region {region})"
        return (f"{service}, project {self.project}, region {region}, "
                f"as {configured_account(self.credentials_file)}")


def resolve_target(
    *,
    project: str | None = None,
    emulator_host: str | None = None,
    credentials_file: str | None = None,
    start_embedded: bool = True,
) -> Target:
    """Decide where requests go (see the module docstring for the order).

    With `start_embedded=False`, step 3 raises instead of starting an emulator.
    """
    forced = forced_target_kind()
    environment_host = os.environ.get(EMULATOR_HOST_ENV) or None
    host = emulator_host or environment_host
    if forced == "gcp":
        host = None  # GCP was asked for by name: an emulator variable left set must not win
    if host:
        source = "emulator_host" if emulator_host else EMULATOR_HOST_ENV
        grpc_host, grpc_port = parse_host_port(host, source)
        # The REST variable describes the emulator of GCPJOBS_EMULATOR_HOST, not another one.
        rest_host = os.environ.get(EMULATOR_REST_HOST_ENV) if host == environment_host else None
        if rest_host:
            rest_host_name, rest_port = parse_host_port(rest_host, EMULATOR_REST_HOST_ENV)
        else:
            rest_host_name, rest_port = grpc_host, grpc_port + 1
        return Target(
            kind="emulator",
            project=project or EMULATOR_PROJECT,
            grpc_address=join_host_port(grpc_host, grpc_port),
            rest_endpoint="http://" + join_host_port(rest_host_name, rest_port),
        )

    if forced == "emulator":
        return embedded_emulator_target()
    configured = project or configured_project(credentials_file)
    if forced == "gcp" and not configured:
        raise GcpJobsError(
            f"{TARGET_ENV}=gcp, but no Google Cloud project is configured; pass --project, set "
            f"GOOGLE_CLOUD_PROJECT or run `gcloud config set project PROJECT`"
        )
    if configured:
        return Target(kind="gcp", project=configured, credentials_file=credentials_file)
    explicit_credentials = credentials_file or os.environ.get(CREDENTIALS_ENV)
    if explicit_credentials:
        # Credentials were given on purpose: falling back to a local emulator would hide that.
        raise GcpJobsError(
            f"no Google Cloud project is configured for the credentials in {explicit_credentials}; "
            "pass project=... (--project) or set GOOGLE_CLOUD_PROJECT"
        )
    if not start_embedded:
        raise GcpJobsError(
            "no Google Cloud project and no emulator are configured; set GOOGLE_CLOUD_PROJECT, "
            f"pass project=..., or set {EMULATOR_HOST_ENV}=HOST:PORT"
        )
    return embedded_emulator_target()


def embedded_emulator_target() -> Target:
    """The embedded emulator of the default data dir (found, or started), as a Target of
    project `gcpjobs-local`. Raises EmulatorError (one line) if it cannot start."""
    # Lazily: only a run that falls back to the embedded emulator pays for `socket` and the
    # emulator's control code.
    from gcpjobs.clients.embedded import embedded_emulator_addresses

    grpc_address, rest_endpoint = embedded_emulator_addresses()
    return Target(kind="emulator", project=EMULATOR_PROJECT, grpc_address=grpc_address,
                  rest_endpoint=rest_endpoint, embedded=True)


def forced_target_kind() -> TargetKind | None:
    """`$GCPJOBS_TARGET`: "emulator", "gcp", or None when unset. A bad value is one line."""
    value = os.environ.get(TARGET_ENV, "").strip().lower()
    if not value:
        return None
    if value not in TARGET_KINDS:
        raise GcpJobsError(
            f"{TARGET_ENV}={os.environ[TARGET_ENV]!r} is not a target; use emulator or gcp "
            "(or unset it to choose by configuration)"
        )
    return "emulator" if value == "emulator" else "gcp"


def planned_project(project: str | None = None, credentials_file: str | None = None) -> str:
    """The project a job would be sent to, decided as `resolve_target` decides it but
    without starting anything (for `preview`)."""
    forced = forced_target_kind()
    if forced != "gcp" and (os.environ.get(EMULATOR_HOST_ENV) or forced == "emulator"):
        return project or EMULATOR_PROJECT
    return project or configured_project(credentials_file) or EMULATOR_PROJECT


# ------------------------------------------------------------------------------ host:port


def parse_host_port(value: str, source: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` (an `http://` prefix is tolerated) -> (host, port)."""
    text = value.strip().removeprefix("http://").rstrip("/")
    example = "write it as HOST:PORT, e.g. 127.0.0.1:8470"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text:
        raise GcpJobsError(f"{source}={value!r} has no port; {example}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise GcpJobsError(f"{source}={value!r} has port {port_text!r}, not a number 1-65535; {example}")
    return host, int(port_text)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ------------------------------------------------------------------------- project lookup


def configured_project(credentials_file: str | None = None) -> str | None:
    """The Google Cloud project configured on this machine, or None. Reads only local files."""
    for name in PROJECT_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    for path in (credentials_file, os.environ.get(CREDENTIALS_ENV)):
        if path:
            project = _project_in_credentials(Path(path).expanduser())
            if project:
                return project
    config_dir = gcloud_config_dir()
    return _project_in_credentials(config_dir / "application_default_credentials.json") or (
        _gcloud_core_project(config_dir)
    )


def configured_account(credentials_file: str | None = None) -> str:
    """Who GCP requests would be made as, from local files: a service-account key's
    `client_email`, else gcloud's `core/account`, else "Application Default Credentials"."""
    for path in (credentials_file, os.environ.get(CREDENTIALS_ENV)):
        if path:
            email = _read_json(Path(path).expanduser()).get("client_email")
            if isinstance(email, str) and email.strip():
                return email.strip()
            return f"the credentials in {path}"
    account = _gcloud_core_value(gcloud_config_dir(), "account")
    if account:
        return f"Application Default Credentials (gcloud account {account})"
    return "Application Default Credentials"


def gcloud_config_dir() -> Path:
    """gcloud's configuration directory: `$CLOUDSDK_CONFIG`, else `~/.config/gcloud`."""
    explicit = os.environ.get("CLOUDSDK_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "gcloud"
    return Path.home() / ".config" / "gcloud"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _project_in_credentials(path: Path) -> str | None:
    """A service-account key's `project_id`, or an ADC file's `quota_project_id`."""
    document = _read_json(path)
    for key in ("project_id", "quota_project_id"):
        value = document.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _gcloud_core_project(config_dir: Path) -> str | None:
    """`core/project` of gcloud's active configuration."""
    return _gcloud_core_value(config_dir, "project")


def _gcloud_core_value(config_dir: Path, key: str) -> str | None:
    """`core/KEY` of gcloud's active configuration."""
    active = os.environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME", "").strip()
    if not active:
        try:
            active = (config_dir / "active_config").read_text(encoding="utf-8").strip()
        except OSError:
            active = ""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config_dir / "configurations" / f"config_{active or 'default'}", encoding="utf-8")
    except configparser.Error:
        return None
    value = parser.get("core", key, fallback="").strip()
    return value or None

"""Credentials in env values are redacted whatever the variable is called (issue 11, finding
11): `preview` showed `DATABASE_URL=postgres://admin:pw@...`, `GITHUB_PAT=ghp_...` and
`SENTRY_URL=https://key@...` in full, because only names were checked."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from gcpjobs.protos.cloudrun import preview as cloud_run_preview
from gcpjobs.protos.vertex import preview as vertex_preview
from gcpjobs.specs.cloudrun import CloudRunJob
from gcpjobs.specs.secrets import REDACTED, holds_secret, redact_env, redact_value, shown_value
from gcpjobs.specs.vertex import VertexJob

GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PRIVATE_KEY = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
               "-----END RSA PRIVATE KEY-----\n")
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")

# (value, what may be shown): each credential example of the finding, and more formats.
REDACTED_VALUES = [
    ("postgres://admin:pw@db.internal:5432/app", f"postgres://admin:{REDACTED}@db.internal:5432/app"),
    ("mysql+pymysql://root:s3cr3t@127.0.0.1/db", f"mysql+pymysql://root:{REDACTED}@127.0.0.1/db"),
    ("redis://:onlypassword@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
    ("https://0123456789abcdef@o1.ingest.sentry.io/42", f"https://{REDACTED}@o1.ingest.sentry.io/42"),
    ("amqp://guest:guest@rabbit/ and https://u:p@b/", f"amqp://guest:{REDACTED}@rabbit/ and "
                                                     f"https://u:{REDACTED}@b/"),
    (GITHUB_TOKEN, REDACTED),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a", REDACTED),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", REDACTED),
    ("xoxb-1234567890-0987654321-AbCdEfGhIjKl", REDACTED),
    ("xoxp-1234567890-0987654321-AbCdEfGhIjKl", REDACTED),
    ("sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234", REDACTED),
    ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv", REDACTED),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", REDACTED),
    ("AKIAIOSFODNN7EXAMPLE", REDACTED),
    ("glpat-xxxxxxxxxxxxxxxxxxxx", REDACTED),
    ("AIzaSyA-1234567890abcdefghijklmnopqrstu", REDACTED),
    ("ya29.a0AfH6SMBx-abcdefghijklmnopqrstuv", REDACTED),
    ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", REDACTED),
    (PRIVATE_KEY, REDACTED),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", REDACTED),
    (JWT, REDACTED),
    (f"Bearer {JWT}", f"Bearer {REDACTED}"),
    (f"--token={GITHUB_TOKEN} --verbose", f"--token={REDACTED} --verbose"),
    (f"https://x-access-token:{GITHUB_TOKEN}@github.com/o/r.git",
     f"https://x-access-token:{REDACTED}@github.com/o/r.git"),
]

# Values that carry no credential and must stay visible.
VISIBLE_VALUES = [
    "https://example.com/path?q=1#frag",
    "gs://my-bucket/data/train-*.tfrecord",
    "postgres://db.internal:5432/app",
    "/home/user/.cache/huggingface",
    "user@example.com",
    "42", "3.0e-4", "", "true", "us-central1", "n1-standard-8",
    "mask-abcdefghijklmnopqrstuvwxyz",  # not an sk- key: `sk` is inside a word
    "high-throughput_ghp", "AKIA", "eyJ", "ghp_short",
    "https://github.com/octocat/hello-world",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
]


@pytest.mark.parametrize(("value", "shown"), REDACTED_VALUES)
def test_credentials_in_values_are_redacted(value: str, shown: str) -> None:
    assert redact_value(value) == shown
    assert holds_secret("HARMLESS_NAME", value)


@pytest.mark.parametrize("value", VISIBLE_VALUES)
def test_values_without_credentials_stay_visible(value: str) -> None:
    assert redact_value(value) == value
    assert not holds_secret("HARMLESS_NAME", value)


def test_names_still_redact_whole_values() -> None:
    assert shown_value("API_TOKEN", "https://example.com") == REDACTED
    assert redact_env({"DATABASE_URL": "postgres://admin:pw@db/app", "EPOCHS": "3"}) == {
        "DATABASE_URL": f"postgres://admin:{REDACTED}@db/app", "EPOCHS": "3"}


@pytest.mark.parametrize("value", [
    "a" * 200_000,
    "ab://" * 40_000,
    "x://" + ":" * 200_000,
    "ghp_" * 50_000,
    "eyJ" + "a." * 100_000,
    "postgres://" + "u" * 200_000 + ":",
])
def test_redaction_is_linear_in_the_value(value: str) -> None:
    started = time.monotonic()
    redact_value(value)
    # A backtracking pattern takes seconds to minutes on these; RE2 takes milliseconds.
    assert time.monotonic() - started < 1.0


# -- preview: the finding's examples end to end --------------------------------------------

FINDING_ENV = {
    "DATABASE_URL": "postgres://admin:pw@db.internal/app",
    "GITHUB_PAT": GITHUB_TOKEN,
    "SENTRY_URL": "https://0123456789abcdef@o1.ingest.sentry.io/42",
    "DATA_URL": "https://example.com/data.csv",
}


def _env_values(text: str) -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "name" in node and isinstance(node.get("value"), str):
                found[str(node["name"])] = node["value"]
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(yaml.safe_load(text))
    return found


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("kind", ["vertex", "cloud-run"])
def test_preview_redacts_credentials_in_values(kind: str, fmt: str) -> None:
    if kind == "vertex":
        text = vertex_preview(VertexJob(image="python:3.11", env=FINDING_ENV), fmt)
    else:
        text = cloud_run_preview(CloudRunJob(image="python:3.11", env=FINDING_ENV), fmt)
    if fmt == "json":
        json.loads(text)
    for secret in ("admin:pw", GITHUB_TOKEN, "0123456789abcdef"):
        assert secret not in text
    assert _env_values(text) == {
        "DATABASE_URL": f"postgres://admin:{REDACTED}@db.internal/app",
        "GITHUB_PAT": REDACTED,
        "SENTRY_URL": f"https://{REDACTED}@o1.ingest.sentry.io/42",
        "DATA_URL": "https://example.com/data.csv",
    }


def test_generated_templates_leave_out_env_with_credentials_in_values() -> None:
    from gcpjobs.specs.templates import generate_base_job_template

    spec = VertexJob(image="python:3.11", env={"DATABASE_URL": "postgres://admin:pw@db/app"})
    text = json.dumps(generate_base_job_template(spec))
    assert "admin:pw" not in text

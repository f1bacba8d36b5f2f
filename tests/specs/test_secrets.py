"""Which environment variable names are treated as secrets."""

from __future__ import annotations

import pytest

from gcpjobs.specs.secrets import REDACTED, looks_secret, redact_env


@pytest.mark.parametrize(
    "name",
    ["API_TOKEN", "HF_TOKEN", "token", "API_KEY", "KEY", "AWS_SECRET_ACCESS_KEY", "MY_KEY_ID",
     "apiKey", "APIKEY", "DB_PASSWORD", "dbPassword", "MYSQLPASSWORD", "PGPASSWD", "DB_PASS",
     "GOOGLE_APPLICATION_CREDENTIALS", "DOCKER_CREDS", "SSH_PRIVATE_KEY", "AUTH_HEADER",
     "SESSION_ID", "COOKIE", "SENTRY_DSN", "DB_CONNECTION_STRING", "client_secret",
     "WANDB_API_KEY", "GITHUB_ACCESS_TOKEN", "accessToken"],
)
def test_secret_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name",
    ["BATCH_SIZE", "MONKEY", "MAX_TOKENS", "MAX_NEW_TOKENS", "TOKENIZER_PATH", "AUTHOR",
     "KEYBOARD_LAYOUT", "PATH", "HOME", "LEARNING_RATE", "AIP_MODEL_DIR", "PASSENGER_COUNT"],
)
def test_harmless_names(name: str) -> None:
    assert not looks_secret(name)


def test_redact_env_replaces_only_secret_values() -> None:
    env = {"API_TOKEN": "t0k3n", "BATCH_SIZE": "32"}
    assert redact_env(env) == {"API_TOKEN": REDACTED, "BATCH_SIZE": "32"}
    assert env["API_TOKEN"] == "t0k3n"  # the input is not changed

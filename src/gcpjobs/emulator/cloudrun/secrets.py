"""Moved to `gcpjobs.emulator.secrets.store`, which Cloud Run and the Secret Manager API share;
kept so that existing imports go on working."""

from gcpjobs.emulator.secrets.store import SecretError, SecretStore

__all__ = ["SecretError", "SecretStore"]

"""Re-exports `gcpjobs.core.events` (its old home; `gcpjobs.StateChange` is public API)."""

from gcpjobs.core.events import StateChange

__all__ = ["StateChange"]

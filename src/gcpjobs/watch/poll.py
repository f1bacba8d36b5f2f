"""Re-exports `gcpjobs.core.poll` under its old name."""

from gcpjobs.core.poll import (
    OnChange,
    PollInterval,
    WaitTimeoutError,
    notify,
    wait_until_terminal,
)

__all__ = ["OnChange", "PollInterval", "WaitTimeoutError", "notify", "wait_until_terminal"]

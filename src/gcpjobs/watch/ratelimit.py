"""Re-exports `gcpjobs.core.ratelimit` under its old name."""

from gcpjobs.core.ratelimit import DEFAULT_READS_PER_MINUTE, RateLimit, acquire, shared_rate_limit

__all__ = ["DEFAULT_READS_PER_MINUTE", "RateLimit", "acquire", "shared_rate_limit"]

"""Cloud Logging (`google.logging.v2.LoggingServiceV2` list + tail) over the jobs' output."""

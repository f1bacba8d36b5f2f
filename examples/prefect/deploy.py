"""Deploy the example flows to a gcpjobs work pool (see README.md beside this file).

    python examples/prefect/deploy.py POOL

The flows' code is read from this directory by the job (a local path works against the
emulator, whose jobs run on this machine; on Google Cloud, use a git repository or an image
with the code, as with any Prefect deployment).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prefect import flow

HERE = Path(__file__).resolve().parent
# Vertex pools need an image (as prefect-gcp's do); against the emulator any name will do, on
# Google Cloud it must have Prefect installed.
IMAGE = os.environ.get("PREFECT_JOB_IMAGE", "prefecthq/prefect:3-latest")


def main(pool: str) -> None:
    for name in ("hello", "fails", "sleeps"):
        deployed = flow.from_source(source=str(HERE), entrypoint=f"flows.py:{name}")
        deployed.deploy(name=name, work_pool_name=pool, build=False, push=False,  # type: ignore[attr-defined]
                        job_variables={"image": IMAGE}, print_next_steps=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/prefect/deploy.py POOL")
    main(sys.argv[1])

"""A plain script whose training function runs as a Vertex AI custom job.

    GCPJOBS_STEP_IMAGE=python:3.11-slim python examples/steps/train_script.py

It runs on the embedded emulator (as a local process), even with a Google project configured;
`GCPJOBS_TARGET=gcp` sends it to Vertex AI, where the image must have gcpjobs and numpy
installed and the store must be a bucket (GCPJOBS_STEP_STORE=gs://BUCKET/steps). `training.py` beside this file is not
installed anywhere: it reaches the job in the code archive.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from training import accuracy, make_data

import gcpjobs

# An example never reaches real GCP unless asked to (GCPJOBS_TARGET=gcp).
os.environ.setdefault("GCPJOBS_TARGET", "emulator")
# On the emulator the image is only recorded; on Vertex AI it is what runs.
os.environ.setdefault("GCPJOBS_STEP_IMAGE", "python:3.11-slim")


@gcpjobs.remote(machine_type="n1-standard-8", accelerator_type="NVIDIA_TESLA_T4",
                scheduling_strategy="SPOT", maximum_run_time="1h")
def fit(features: np.ndarray, labels: np.ndarray, epochs: int) -> dict[str, Any]:
    from training import train  # runs in the job, from the code archive

    print(f"training on {len(labels)} samples for {epochs} epochs")
    return train(features, labels, epochs=epochs)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    features, labels = make_data(5000, seed=1)
    model = fit(features, labels, epochs=300)  # blocks until the job has ended
    print(f"loss {model['loss']:.3f}, accuracy {accuracy(model, features, labels):.3f}")


if __name__ == "__main__":
    main()

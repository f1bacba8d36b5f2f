"""A small model to train as a remote step: logistic regression in NumPy.

The remote job imports this module to find `train`, so it imports nothing but NumPy: keep
the functions you run remotely in light modules (not in the module of your Prefect flow).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def make_data(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy clusters in 8 dimensions."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    centers = np.where(labels[:, None] == 1, 1.0, -1.0)
    features = centers + rng.normal(scale=1.5, size=(samples, 8))
    return features, labels


def train(features: np.ndarray, labels: np.ndarray, epochs: int = 200,
          learning_rate: float = 0.5) -> dict[str, Any]:
    """Gradient descent on the log loss; the weights, bias and final loss."""
    weights = np.zeros(features.shape[1])
    bias = 0.0
    loss = 0.0
    for _ in range(epochs):
        predicted = 1.0 / (1.0 + np.exp(-(features @ weights + bias)))
        error = predicted - labels
        weights -= learning_rate * features.T @ error / len(labels)
        bias -= learning_rate * float(error.mean())
        loss = float(-np.mean(labels * np.log(predicted + 1e-12)
                              + (1 - labels) * np.log(1 - predicted + 1e-12)))
    return {"weights": weights, "bias": bias, "loss": loss}


def accuracy(model: dict[str, Any], features: np.ndarray, labels: np.ndarray) -> float:
    predicted = (features @ model["weights"] + model["bias"]) > 0
    return float(np.mean(predicted == labels))

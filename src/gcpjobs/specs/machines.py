"""Which machine types Vertex AI custom training offers, and which accelerators each can carry.

One table, read by the spec validation (to refuse a bad job before it is sent) and by the
emulator (to answer INVALID_ARGUMENT as the real service does). It is deliberately a plain
data module with no Google imports.

Sources: https://cloud.google.com/vertex-ai/docs/training/configure-compute (machine types and
GPU tables). The per-vCPU GPU limits of N1 machines are not modelled: an N1 machine accepts any
of its GPU counts here, and the real service may still refuse a very large N1 with one GPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Every accelerator name `aiplatform_v1.AcceleratorType` knows (2.7.0), minus UNSPECIFIED.
ACCELERATOR_TYPES: tuple[str, ...] = (
    "NVIDIA_TESLA_K80",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_L4",
    "NVIDIA_H100_80GB",
    "NVIDIA_H100_MEGA_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200",
    "NVIDIA_GB200",
    "NVIDIA_RTX_PRO_6000",
    "TPU_V2",
    "TPU_V3",
    "TPU_V4_POD",
    "TPU_V5_LITEPOD",
)


@dataclass(frozen=True)
class MachineType:
    name: str
    family: str
    vcpus: int
    # accelerator name -> the counts this machine accepts
    accelerators: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # GPU-bundled machines (A2, A3, G2 ...) come with exactly one accelerator configuration
    bundled: tuple[str, int] | None = None

    @property
    def accepts_accelerators(self) -> bool:
        return bool(self.accelerators)


_N1_GPUS = MappingProxyType(
    {
        "NVIDIA_TESLA_T4": (1, 2, 4),
        "NVIDIA_TESLA_P4": (1, 2, 4),
        "NVIDIA_TESLA_P100": (1, 2, 4),
        "NVIDIA_TESLA_V100": (1, 2, 4, 8),
    }
)


def _plain(family: str, shapes: Iterable[tuple[str, int]]) -> list[MachineType]:
    return [MachineType(name=name, family=family, vcpus=vcpus) for name, vcpus in shapes]


def _sizes(prefix: str, sizes: Iterable[int]) -> list[tuple[str, int]]:
    return [(f"{prefix}-{n}", n) for n in sizes]


def _bundled(family: str, accelerator: str,
             rows: Iterable[tuple[str, int, int]]) -> list[MachineType]:
    """Machines that come with `count` of `accelerator` each: rows of (name, vCPUs, count)."""
    return [
        MachineType(
            name=name,
            family=family,
            vcpus=vcpus,
            accelerators={accelerator: (count,)},
            bundled=(accelerator, count),
        )
        for name, vcpus, count in rows
    ]


def _build_catalog() -> dict[str, MachineType]:
    machines: list[MachineType] = []
    machines += _plain("e2", _sizes("e2-standard", (4, 8, 16, 32)))
    machines += _plain("e2", _sizes("e2-highmem", (2, 4, 8, 16)))
    machines += _plain("e2", _sizes("e2-highcpu", (16, 32)))
    machines += _plain("n2", _sizes("n2-standard", (4, 8, 16, 32, 48, 64, 80)))
    machines += _plain("n2", _sizes("n2-highmem", (2, 4, 8, 16, 32, 48, 64, 80)))
    machines += _plain("n2", _sizes("n2-highcpu", (16, 32, 48, 64, 80)))
    machines += _plain("c2", _sizes("c2-standard", (4, 8, 16, 30, 60)))
    machines += _plain("m1", [("m1-ultramem-40", 40), ("m1-ultramem-80", 80),
                              ("m1-ultramem-160", 160), ("m1-megamem-96", 96)])
    for name, vcpus in (
        _sizes("n1-standard", (4, 8, 16, 32, 64, 96))
        + _sizes("n1-highmem", (2, 4, 8, 16, 32, 64, 96))
        + _sizes("n1-highcpu", (16, 32, 64, 96))
    ):
        machines.append(MachineType(name=name, family="n1", vcpus=vcpus, accelerators=_N1_GPUS))
    machines += _bundled("a2", "NVIDIA_TESLA_A100", [
        ("a2-highgpu-1g", 12, 1), ("a2-highgpu-2g", 24, 2), ("a2-highgpu-4g", 48, 4),
        ("a2-highgpu-8g", 96, 8), ("a2-megagpu-16g", 96, 16),
    ])
    machines += _bundled("a2", "NVIDIA_A100_80GB", [
        ("a2-ultragpu-1g", 12, 1), ("a2-ultragpu-2g", 24, 2), ("a2-ultragpu-4g", 48, 4),
        ("a2-ultragpu-8g", 96, 8),
    ])
    machines += _bundled("a3", "NVIDIA_H100_80GB", [
        ("a3-highgpu-1g", 26, 1), ("a3-highgpu-2g", 52, 2), ("a3-highgpu-4g", 104, 4),
        ("a3-highgpu-8g", 208, 8),
    ])
    machines += _bundled("a3", "NVIDIA_H100_MEGA_80GB", [("a3-megagpu-8g", 208, 8)])
    machines += _bundled("a3", "NVIDIA_H200_141GB", [("a3-ultragpu-8g", 224, 8)])
    machines += _bundled("a4", "NVIDIA_B200", [("a4-highgpu-8g", 224, 8)])
    machines += _bundled("g2", "NVIDIA_L4", [
        ("g2-standard-4", 4, 1), ("g2-standard-8", 8, 1), ("g2-standard-12", 12, 1),
        ("g2-standard-16", 16, 1), ("g2-standard-24", 24, 2), ("g2-standard-32", 32, 1),
        ("g2-standard-48", 48, 4), ("g2-standard-96", 96, 8),
    ])
    machines.append(
        MachineType(
            name="cloud-tpu",
            family="tpu",
            vcpus=96,
            accelerators={"TPU_V2": (8,), "TPU_V3": (8,)},
        )
    )
    machines += _bundled("ct5lp", "TPU_V5_LITEPOD", [
        ("ct5lp-hightpu-1t", 24, 1), ("ct5lp-hightpu-4t", 112, 4), ("ct5lp-hightpu-8t", 224, 8),
    ])
    return {machine.name: machine for machine in machines}


MACHINE_TYPES: Mapping[str, MachineType] = MappingProxyType(_build_catalog())

BOOT_DISK_TYPES: tuple[str, ...] = ("pd-ssd", "pd-standard", "hyperdisk-balanced")
BOOT_DISK_SIZE_GB_RANGE: tuple[int, int] = (100, 64_000)


def accelerator_problem(
    machine_type: str, accelerator_type: str | None, accelerator_count: int
) -> str | None:
    """Why this machine cannot carry this accelerator configuration, or None when it can.

    The wording follows the real service's INVALID_ARGUMENT messages, so that the spec's error
    and the emulator's error read the same.
    """
    machine = MACHINE_TYPES.get(machine_type)
    if machine is None:
        return f'Machine type "{machine_type}" is not supported.'
    if accelerator_type is None:
        if accelerator_count:
            return "Both `accelerator_type` and `accelerator_count` should be specified or none."
        if machine.bundled is not None:
            name, count = machine.bundled
            return (
                f'Machine type "{machine_type}" requires accelerator_type {name} '
                f"with accelerator_count {count}."
            )
        return None
    if accelerator_type not in ACCELERATOR_TYPES:
        return f'Accelerator "{accelerator_type}" is not a known accelerator type.'
    if accelerator_count <= 0:
        return "Both `accelerator_type` and `accelerator_count` should be specified or none."
    counts = machine.accelerators.get(accelerator_type)
    if counts is None:
        return f'Accelerator "{accelerator_type}" is not supported for machine type "{machine_type}".'
    if accelerator_count not in counts:
        allowed = ", ".join(str(c) for c in counts)
        return (
            f'Accelerator count {accelerator_count} is not supported for "{accelerator_type}" '
            f'on machine type "{machine_type}"; supported counts: {allowed}.'
        )
    return None


def machines_for(accelerator_type: str) -> list[str]:
    """Machine types that can carry this accelerator (for "how to fix it" hints)."""
    return [m.name for m in MACHINE_TYPES.values() if accelerator_type in m.accelerators]

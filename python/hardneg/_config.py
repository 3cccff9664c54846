from __future__ import annotations

import platform
import sys

import torch

from hardneg import _backend


def config() -> dict:
    """The build and the backends each op can use here, as a dict."""
    import hardneg
    import hardneg.ops  # noqa: F401  (registers every op's backends)

    c = _backend.core()
    info = dict(c.build_info()) if c is not None else {"core": "not built"}
    cuda_dev = None
    if c is not None and info.get("cuda") and hasattr(c, "cuda_device_count"):
        cuda_dev = tuple(c.cuda_device_count())
    return {
        "hardneg": hardneg.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "triton": _backend.triton_version(),
        "triton_interpret": _backend.triton_interpreting(),
        "core": info,
        "cuda_devices_seen_by_core": cuda_dev,
        "torch_cuda_available": torch.cuda.is_available(),
        "ops": {
            op: {
                "implemented": _backend.registered(op),
                "available_cpu": _backend.available(op, "cpu"),
                "available_cuda": _backend.available(op, "cuda"),
            }
            for op in _backend.ops()
        },
    }


def show_config(file=None) -> None:
    """Print the build (CUDA or not, OpenMP threads, CPU ISA, versions) and the backends of each op."""
    cfg = config()
    out = file or sys.stdout
    core = cfg["core"]
    print(f"hardneg {cfg['hardneg']}  (python {cfg['python']}, torch {cfg['torch']}, triton {cfg['triton']})", file=out)
    print(f"  platform: {cfg['platform']}", file=out)
    if "cuda" in core:
        print(f"  core: CUDA kernels {'built' if core['cuda'] else 'not built'}; CPU kernels {core['cpu_isa']}; "
              f"OpenMP max threads {core['omp_max_threads']}; {core.get('compiler', '')}", file=out)
    else:
        print("  core: NOT BUILT (only the reference backend works)", file=out)
    if cfg["cuda_devices_seen_by_core"] is not None:
        print(f"  CUDA devices seen by the core: {cfg['cuda_devices_seen_by_core']}", file=out)
    print(f"  torch.cuda.is_available(): {cfg['torch_cuda_available']}; TRITON_INTERPRET={int(cfg['triton_interpret'])}",
          file=out)
    print("  ops (implemented | available on cpu | available on cuda):", file=out)
    for op, v in cfg["ops"].items():
        print(f"    {op:<22} {','.join(v['implemented']):<28} | {','.join(v['available_cpu']):<18} | "
              f"{','.join(v['available_cuda'])}", file=out)

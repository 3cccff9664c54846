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
    if c is not None and info.get("cuda") and hasattr(c, "cuda_device_count") and torch.cuda.is_available():
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
    """Print the build (CUDA or not, OpenMP threads, CPU ISA, versions) and the backends each op can run here."""
    cfg = config()
    out = file or sys.stdout
    core = cfg["core"]
    print(f"hardneg {cfg['hardneg']}  (python {cfg['python']}, torch {cfg['torch']}, triton {cfg['triton']})", file=out)
    print(f"  platform: {cfg['platform']}", file=out)
    if "cuda" in core:
        print(f"  core: CPU kernels {core['cpu_isa']}, OpenMP max threads {core['omp_max_threads']}; CUDA kernels "
              f"{'built' if core['cuda'] else 'not built'}; {core.get('compiler', '')}", file=out)
    else:
        print("  core: NOT BUILT (only the reference backend works)", file=out)
    gpu = cfg["torch_cuda_available"]
    if gpu:
        print(f"  CUDA: {torch.cuda.device_count()} device(s), {torch.cuda.get_device_name()}", file=out)
    else:
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no device visible"
        print(f"  CUDA: no CUDA device ({why})", file=out)
    if cfg["triton_interpret"]:
        print("  TRITON_INTERPRET=1: Triton kernels run in the interpreter on CPU tensors (for tests)", file=out)
    print(f"  backends that run here (automatic choice first){' | on CUDA' if gpu else ''}:", file=out)
    for op, v in cfg["ops"].items():
        line = f"    {op:<22} cpu: {', '.join(_by_preference(v['available_cpu'], 'cpu'))}"
        if gpu:
            line += f"  | cuda: {', '.join(_by_preference(v['available_cuda'], 'cuda'))}"
        print(line, file=out)


def _by_preference(backends, device):
    order = _backend._PREFERENCE.get(device, ())
    return sorted(backends, key=lambda b: order.index(b) if b in order else len(order))

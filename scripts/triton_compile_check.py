"""Compile every GPU specialisation of the Triton mining kernels for a CUDA target, without a GPU.

The tests run the kernels in the interpreter (TRITON_INTERPRET=1), which accepts code the GPU compiler may
reject. This script runs the real host code of topk_mine and sample_by_score on small CPU tensors for every
metric, dtype, exclusion and weighting, intercepts each kernel launch and compiles it (ASTSource + GPUTarget,
ptxas from the triton wheel) instead of running it. Exit status 1 if any specialisation fails.

    env -u TRITON_INTERPRET python scripts/triton_compile_check.py [--arch 90] [--quick]

About 10 minutes on 2 CPU cores (160 specialisations); --quick does float32 and dot / l1 only.
"""
import argparse
import os
import sys
import time
import types

if os.environ.get("TRITON_INTERPRET", "0") == "1":
    sys.exit("unset TRITON_INTERPRET: this script compiles the kernels for the GPU")

import torch  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource, compile as triton_compile  # noqa: E402
from triton.runtime.jit import JITFunction  # noqa: E402

POINTER = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.int64: "*i64",
           torch.int32: "*i32"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", type=int, default=90)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    target = GPUTarget("cuda", args.arch, 32)
    seen, failures = set(), []

    def compile_launch(fn, call_args, kwargs):
        meta = dict(kwargs)
        warps = meta.pop("num_warps", 4)
        sig, const = {}, {}
        for name, v in zip(fn.arg_names, call_args):
            if isinstance(v, torch.Tensor):
                sig[name] = POINTER[v.dtype]
            elif isinstance(v, bool):
                sig[name] = "i1"
            elif isinstance(v, int):
                sig[name] = "i64" if abs(v) >= 2**31 else "i32"
            else:
                sig[name] = "fp32"
        for name in fn.arg_names[len(call_args):]:
            sig[name], const[name] = "constexpr", meta[name]
        key = (fn.__name__, tuple(sorted(sig.items())), tuple(sorted(const.items())), warps)
        if key in seen:
            return
        seen.add(key)
        t0 = time.time()
        try:
            triton_compile(ASTSource(fn, sig, const), target=target, options={"num_warps": warps})
            print(f"ok   {fn.__name__} {const} warps={warps} ({time.time() - t0:.1f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failing specialisation
            failures.append(fn.__name__)
            print(f"FAIL {fn.__name__} {const} warps={warps}: {e!r}"[:4000], flush=True)

    JITFunction.__getitem__ = lambda self, grid: (lambda *a, **k: compile_launch(self, a, k))
    torch.cuda.get_device_properties = lambda device: types.SimpleNamespace(multi_processor_count=132)

    from hardneg.kernels.mining import sample_by_score as S
    from hardneg.kernels.mining import topk_mine as T

    g = torch.Generator().manual_seed(0)
    B, N, d, k = 64, 5000, 32, 8
    ex = (torch.arange(B + 1) * 2, torch.randint(0, N, (B, 2), generator=g).sort(1).values.flatten())
    dtypes = (torch.float32,) if args.quick else (torch.float32, torch.bfloat16)
    metrics = (0, 3) if args.quick else range(5)
    for dtype in dtypes:
        q, c = torch.randn(B, d, generator=g).to(dtype), torch.randn(N, d, generator=g).to(dtype)
        for metric in metrics:
            for e in (None, ex):
                calls = ((T.topk_mine_triton, (q, c, k, metric, e)), (T._insertion_topk, (q, c, k, metric, e)),
                         (S.sample_by_score_triton, (q, c, k, metric, 0, 1.0, e, False, 1)),
                         (S.sample_by_score_triton, (q, c, k, metric, 1, 1.0, e, True, 1)),
                         (S._insertion_sample, (q, c, k, metric, 1, 1.0, e, 1)))
                for fn, a in calls:
                    try:
                        fn(*a)
                    except Exception:  # noqa: BLE001 - host code after a launch that did not run reads garbage
                        pass
    print(f"{len(seen) - len(failures)} specialisations compiled for sm_{args.arch}, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

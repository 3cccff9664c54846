"""Run bad-input cases in child processes, so that a crash (SIGSEGV, abort) fails its own case instead of
killing pytest. All cases of a family share one child; after a crash the remaining cases go to a fresh one.

A case is ``(name, code, expected, fragment)``: ``code`` runs (``exec``) in a namespace prepared by the family's
``setup`` code; ``expected`` is the exception class name it must raise (``"TypeError"``, ``"ValueError"``),
or None when it must return normally (a case that checks a valid answer with ``assert``); ``fragment`` must
occur in the message.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

_CHILD = r"""
import json, sys
payload = json.loads(sys.stdin.read())
g = {}
exec(payload["setup"], g)
for i, code in payload["cases"]:
    print(json.dumps({"i": i, "start": True}), flush=True)
    try:
        exec(code, dict(g))
        res = {"i": i, "outcome": "returned"}
    except BaseException as e:  # noqa: BLE001 - the parent judges the type
        res = {"i": i, "outcome": "raised", "type": type(e).__name__, "msg": str(e)}
    print(json.dumps(res), flush=True)
"""


def run_cases(setup: str, cases, *, timeout: float = 300) -> dict[str, dict]:
    """name -> ``{"outcome": "returned" | "raised" | "crashed", "type", "msg"}`` for every case."""
    todo = list(enumerate(cases))
    results: dict[str, dict] = {}
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    while todo:
        payload = json.dumps({"setup": setup, "cases": [(i, c[1]) for i, c in todo]})
        p = subprocess.run([sys.executable, "-c", _CHILD], input=payload, capture_output=True, text=True,
                           timeout=timeout, env=env)
        done, started = set(), None
        for line in p.stdout.splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("start"):
                started = r["i"]
                continue
            done.add(r["i"])
            results[cases[r["i"]][0]] = r
        if p.returncode == 0 and len(done) == len(todo):
            break
        if started is None or started in done:  # the setup itself failed
            raise RuntimeError(f"case runner failed before any case (rc {p.returncode}): {p.stderr[-2000:]}")
        results[cases[started][0]] = {"outcome": "crashed", "type": f"exit status {p.returncode}",
                                      "msg": p.stderr[-2000:]}
        todo = [(i, c) for i, c in todo if i not in done and i != started]
    return results


def check(results: dict, case) -> None:
    name, _, expected, fragment = case
    r = results[name]
    assert r["outcome"] != "crashed", f"{name}: the interpreter crashed ({r['type']}): {r['msg']}"
    if expected is None:
        assert r["outcome"] == "returned", f"{name}: expected a result, got {r.get('type')}: {r.get('msg')}"
        return
    assert r["outcome"] == "raised", f"{name}: expected {expected}, but the call returned without an error"
    assert r["type"] == expected, f"{name}: expected {expected}, got {r['type']}: {r['msg']}"
    assert fragment in r["msg"], f"{name}: {fragment!r} not in the message {r['msg']!r}"
    assert "incompatible function arguments" not in r["msg"], f"{name}: a pybind11 signature dump: {r['msg']}"


def family_test(setup: str, cases):
    """The parametrised pytest test of one family's cases (all run once, in child processes, on first use)."""
    import pytest

    cache: dict = {}

    @pytest.mark.parametrize("case", cases, ids=[c[0] for c in cases])
    def test_bad_input(case):
        if not cache:
            cache.update(run_cases(setup, cases))
        check(cache, case)

    return test_bad_input

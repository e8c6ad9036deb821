"""
Single-observation inference latency of a flow policy against SB3 PPO's ``predict``, in the same process.

For the library-default ``FPO("MlpPolicy", env)`` and ``PPO("MlpPolicy", env)`` it times, at batch 1:

* ``fpo_predict_K``: ``FPO.predict(obs, deterministic=True)`` (zero-sampling) with K Euler steps, K = 5 and 10;
* ``onnx_K``: the same policy exported with :func:`sb3_fpo.export.export_onnx` and run by onnxruntime (one
  ``InferenceSession.run`` per observation, the float32 conversion of the observation included);
* ``ppo_predict``: ``PPO.predict(obs, deterministic=True)``, the yardstick.

Each repeat times every candidate for ``--calls`` calls in turn (PPO first), and the table gives the median over the
repeats of candidate ÷ PPO in the same repeat (absolute times on a shared machine are noise). One torch and one
onnxruntime thread, as a deployed single-env controller would use.

    python benchmarks/inference_latency.py --env Pendulum-v1 --repeats 15 --json benchmarks/results/inference/pendulum.json
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from mujoco_benchmark import git_commit
from stable_baselines3 import PPO

from sb3_fpo import FPO
from sb3_fpo.export import export_onnx


def per_call_seconds(call: Callable[[], Any], calls: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def onnx_session(model: FPO, flow_steps: int) -> Any:
    import onnxruntime as ort

    buffer = io.BytesIO()
    export_onnx(model, buffer, flow_steps=flow_steps, flow_method="euler")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--calls", type=int, default=500, help="calls per candidate and repeat")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    th.set_num_threads(1)

    ppo = PPO("MlpPolicy", args.env, seed=0)
    fpo = FPO("MlpPolicy", args.env, seed=0)
    obs = np.asarray(fpo.observation_space.sample(), dtype=np.float32)
    sessions = {k: onnx_session(fpo, k) for k in (5, 10)}
    onnx_action = sessions[5].run(None, {"obs": obs[None]})[0][0]
    fpo.policy.eval_flow_steps = 5
    assert np.allclose(onnx_action, fpo.predict(obs, deterministic=True)[0], atol=1e-5)

    def fpo_predict(k: int) -> Callable[[], Any]:
        def call() -> Any:
            fpo.policy.eval_flow_steps = k
            return fpo.predict(obs, deterministic=True)

        return call

    def onnx_run(k: int) -> Callable[[], Any]:
        session = sessions[k]
        return lambda: session.run(None, {"obs": np.asarray(obs, dtype=np.float32)[None]})[0][0]

    candidates: dict[str, Callable[[], Any]] = {
        "fpo_predict_5": fpo_predict(5),
        "fpo_predict_10": fpo_predict(10),
        "onnx_5": onnx_run(5),
        "onnx_10": onnx_run(10),
    }
    ratios: dict[str, list[float]] = {name: [] for name in candidates}
    ppo_seconds = []
    for _ in range(args.repeats):
        ppo_time = per_call_seconds(lambda: ppo.predict(obs, deterministic=True), args.calls)
        ppo_seconds.append(ppo_time)
        for name, call in candidates.items():
            ratios[name].append(per_call_seconds(call, args.calls) / ppo_time)

    figures: dict[str, Any] = {
        "settings": vars(args),
        "machine": platform.processor() or platform.machine(),
        "commit": git_commit(),
        "versions": {"torch": th.__version__, "onnxruntime": __import__("onnxruntime").__version__},
        "ppo_predict_us_median": 1e6 * statistics.median(ppo_seconds),
        "ratio_to_ppo_predict": {name: statistics.median(values) for name, values in ratios.items()},
        "ratio_to_ppo_predict_min_max": {name: [min(v), max(v)] for name, v in ratios.items()},
    }
    print(f"{'candidate':16s} ÷ PPO predict (median of {args.repeats} repeats, min-max)")
    for name, value in figures["ratio_to_ppo_predict"].items():
        low, high = figures["ratio_to_ppo_predict_min_max"][name]
        print(f"{name:16s} {value:5.2f}  ({low:.2f}-{high:.2f})")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(figures, file, indent=1)


if __name__ == "__main__":
    main()

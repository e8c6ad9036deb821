"""The MuJoCo benchmark harness: zoo hyperparameters, a tiny run, its outputs, and resuming."""

import json
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import mujoco_benchmark  # noqa: E402

from sb3_fpo.presets import load_preset  # noqa: E402


def test_presets_of_rl_zoo_files_v4_keys_for_v5_ids():
    import rl_zoo3

    ppo_yml = Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml"
    preset = load_preset("HalfCheetah-v5", ppo_yml)  # the zoo tuned HalfCheetah-v4
    assert preset.entry == "HalfCheetah-v4" and preset.kwargs["clip_range"] == 0.1
    assert preset.kwargs["learning_rate"] == pytest.approx(2.0633e-05)
    schedule = load_preset("CartPole-v1", ppo_yml).kwargs["clip_range"]  # lin_0.2 in the zoo's file
    assert schedule(1.0) == pytest.approx(0.2) and schedule(0.5) == pytest.approx(0.1)
    assert preset.kwargs["policy_kwargs"]["net_arch"] == dict(pi=[256, 256], vf=[256, 256])
    assert preset.n_envs == 1 and preset.normalize == {}
    assert load_preset("InvertedPendulum-v5", ppo_yml).kwargs["n_steps"] == 32  # its v2 entry
    with pytest.raises(KeyError, match="No preset"):
        load_preset("Unknown-v5", ppo_yml)
    fpo = load_preset("Hopper-v5")
    assert "ent_coef" not in fpo.kwargs and "use_sde" not in fpo.kwargs and fpo.n_envs == 8


def test_fpo_hyperparams_values():
    assert mujoco_benchmark.parse_override("learning_rate:6e-4") == ("learning_rate", 6e-4)  # a str in YAML 1.1
    assert mujoco_benchmark.parse_override("gamma:0.98") == ("gamma", 0.98)
    assert mujoco_benchmark.parse_override("n_samples:16") == ("n_samples", 16)
    assert mujoco_benchmark.parse_override("cfm_loss_clamp:null") == ("cfm_loss_clamp", None)
    assert mujoco_benchmark.parse_override("trust_region:aspo") == ("trust_region", "aspo")
    assert mujoco_benchmark.parse_override('policy_kwargs:"dict(a=1)"') == ("policy_kwargs", "dict(a=1)")
    for bad in ("gamma", ":0.9"):
        with pytest.raises(ValueError, match="KEY:VALUE"):
            mujoco_benchmark.parse_override(bad)


def test_tiny_benchmark_run_and_resume(tmp_path):
    pytest.importorskip("mujoco")
    pytest.importorskip("matplotlib")
    command = [
        sys.executable, "benchmarks/mujoco_benchmark.py", "--envs", "InvertedPendulum-v5", "--seeds", "0",
        "--timesteps", "256", "--eval-freq", "128", "--eval-episodes", "1", "--workers", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "3 runs to do" in first.stdout
    run = json.loads((tmp_path / "runs" / "fpo_InvertedPendulum-v5_seed0.json").read_text())
    assert [e["steps"] for e in run["evaluations"]] == [128, 256] and run["steps_per_s"] > 0
    assert list((tmp_path / "progress").iterdir()) == []  # finished runs leave no partial record
    assert run["commit"] and f"runs made at commit {run['commit']}" in (tmp_path / "table.md").read_text()
    assert "| InvertedPendulum-v5 |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "curves_InvertedPendulum-v5.png").stat().st_size > 1000
    rows = (tmp_path / "evaluations.csv").read_text().splitlines()
    assert sum(row.startswith("fpo,") for row in rows) == 2 and any(row.startswith("ppo,") for row in rows)
    default = json.loads((tmp_path / "runs" / "ppo_default_InvertedPendulum-v5_seed0.json").read_text())
    assert default["n_envs"] == 1 and default["normalize"] == "{}" and default["hyperparams"] == "{}"  # SB3 defaults
    assert [e["steps"] for e in default["evaluations"]] == [2048]  # SB3's default rollout: 2048 steps
    assert default["evaluations"][0]["train_time_s"] > 0
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 runs to do (3 already done)" in again.stdout


def test_fpo_hyperparams_override_the_preset(tmp_path):
    pytest.importorskip("mujoco")
    pytest.importorskip("matplotlib")
    command = [
        sys.executable, "benchmarks/mujoco_benchmark.py", "--envs", "InvertedPendulum-v5", "--seeds", "0", "--algos", "fpo",
        "--timesteps", "64", "--eval-freq", "64", "--eval-episodes", "1", "--workers", "1", "--out", str(tmp_path),
        "--fpo-hyperparams", "n_samples:3", "policy_kwargs:\"dict(flow_steps=2)\"", "--eval-envs", "2",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((tmp_path / "runs" / "fpo_InvertedPendulum-v5_seed0.json").read_text())
    assert "'n_samples': 3" in run["hyperparams"] and "'flow_steps': 2" in run["hyperparams"]
    assert [e["eval_envs"] for e in run["evaluations"]] == [2]
    table = (tmp_path / "table.md").read_text()
    assert "--fpo-hyperparams n_samples:3" in table and "--eval-envs 2" in table
    assert "evaluations: 1 on 2 envs side by side (--eval-envs)" in table


def test_eval_envs_note_counts_the_evaluations_of_each_kind():
    sequential = {"evaluations": [{"steps": 1}, {"steps": 2, "eval_envs": 1}]}  # records from before --eval-envs
    assert mujoco_benchmark.eval_envs_note([sequential]) == ""
    batched = {"evaluations": [{"steps": 3, "eval_envs": 10}]}
    note = mujoco_benchmark.eval_envs_note([sequential, batched])
    assert note == "; evaluations: 2 on 1 env, 1 on 10 envs side by side (--eval-envs)"


def test_a_run_cut_short_resumes_from_its_last_evaluation(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")
    calls = []
    original = mujoco_benchmark.evaluate

    def evaluate_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the first evaluation (deterministic + stochastic) is saved, then the process "dies"
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    settings = dict(timesteps=128, eval_freq=64, episodes=1, fpo_conf=str(ROOT / "hyperparams" / "fpo.yml"))
    overrides = {"n_steps": 32, "batch_size": 32, "n_epochs": 1}
    monkeypatch.setattr(mujoco_benchmark, "evaluate", evaluate_then_stop)
    with pytest.raises(KeyboardInterrupt):
        mujoco_benchmark.run("fpo", "InvertedPendulum-v5", 0, out=str(tmp_path), fpo_overrides=overrides, **settings)
    progress = tmp_path / "progress"
    assert sorted(p.name for p in progress.iterdir()) == [
        "fpo_InvertedPendulum-v5_seed0.json",
        "fpo_InvertedPendulum-v5_seed0_steps64.zip",
        "fpo_InvertedPendulum-v5_seed0_steps64_vecnormalize.pkl",
    ]
    monkeypatch.setattr(mujoco_benchmark, "evaluate", original)
    mujoco_benchmark.run("fpo", "InvertedPendulum-v5", 0, out=str(tmp_path), fpo_overrides=overrides, **settings)
    run = json.loads((tmp_path / "runs" / "fpo_InvertedPendulum-v5_seed0.json").read_text())
    assert [e["steps"] for e in run["evaluations"]] == [64, 128] and run["resumed_at_steps"] == 64
    assert run["evaluations"][1]["train_time_s"] > run["evaluations"][0]["train_time_s"]
    assert list(progress.iterdir()) == []


def test_stop_after_pauses_between_evaluations_and_mixed_machines_get_no_wall_time(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")

    class Clock:  # each reading of the wall clock advances it by 100 s; perf_counter stays real
        now = 0.0
        perf_counter = staticmethod(time.perf_counter)

        def time(self):
            self.now += 100.0
            return self.now

    settings = dict(timesteps=128, eval_freq=64, episodes=1, fpo_conf=str(ROOT / "hyperparams" / "fpo.yml"))
    overrides = {"n_steps": 32, "batch_size": 32, "n_epochs": 1}
    monkeypatch.setattr(mujoco_benchmark, "time", Clock())
    # the first chunk "takes" 100 s; a second would end after the 250 s budget, so the run pauses after one
    message = mujoco_benchmark.run(
        "fpo", "InvertedPendulum-v5", 0, out=str(tmp_path), fpo_overrides=overrides, deadline=250.0, machine="lent",
        train_log=True, **settings,
    )  # fmt: skip
    assert "paused at 64 steps" in message and not (tmp_path / "runs").exists()
    partial = json.loads((tmp_path / "progress" / "fpo_InvertedPendulum-v5_seed0.json").read_text())
    assert [e["machine"] for e in partial["evaluations"]] == ["lent"]
    monkeypatch.setattr(mujoco_benchmark, "time", time)
    mujoco_benchmark.run(
        "fpo", "InvertedPendulum-v5", 0, out=str(tmp_path), fpo_overrides=overrides, train_log=True, **settings
    )
    run = json.loads((tmp_path / "runs" / "fpo_InvertedPendulum-v5_seed0.json").read_text())
    assert [e["machine"] for e in run["evaluations"]] == ["lent", "local"] and run["resumed_at_steps"] == 64
    for segment in ("from0", "from64"):  # one training log per process that worked on the run
        log = (tmp_path / "train_logs" / f"fpo_InvertedPendulum-v5_seed0_{segment}" / "progress.csv").read_text()
        assert "train/ratio_max" in log.splitlines()[0] and len(log.splitlines()) >= 2
    assert "steps_per_s" not in run and mujoco_benchmark.wall_times(run) is None  # seconds of two processors
    assert list((tmp_path / "progress").iterdir()) == []


def test_iqm_and_stratified_bootstrap_by_hand():
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    assert mujoco_benchmark.iqm(scores) == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))  # the middle half
    tasks = [np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0])]
    assert mujoco_benchmark.stratified_bootstrap_ci(tasks, n_boot=200) == (pytest.approx(1.5), pytest.approx(1.5))
    low, high = mujoco_benchmark.stratified_bootstrap_ci([np.array([0.5, 1.0, 1.5]), np.array([1.0, 2.0, 3.0])])
    assert low < mujoco_benchmark.iqm(np.array([0.5, 1.0, 1.5, 1.0, 2.0, 3.0])) < high


def test_scores_normalised_by_the_best_ppo():
    def record(algo, seed, value):
        return dict(algo=algo, env="A-v5", seed=seed, evaluations=[dict(det_mean=value)])

    runs = [record("fpo", 0, 300.0), record("fpo", 1, 100.0), record("ppo", 0, 100.0), record("ppo_default", 0, 200.0)]
    assert mujoco_benchmark.normalized_scores(runs)["A-v5"] == pytest.approx([1.5, 0.5])  # best PPO: 200


def test_tasks_where_the_zoo_entry_is_ppo_default_are_named():
    default = dict(algo="ppo_default", hyperparams="{}", normalize="{}", n_envs=1)
    runs = [
        dict(default, env="A-v5"),
        dict(default, env="A-v5", algo="ppo"),  # rl-zoo3's entry: SB3's defaults + VecNormalize
        dict(default, env="B-v5"),
        dict(default, env="B-v5", algo="ppo", hyperparams="{'gamma': 0.98}"),
        dict(default, env="C-v5", algo="ppo", hyperparams=None),  # rebuilt record: settings unknown
        dict(default, env="C-v5", hyperparams=None),
    ]
    assert mujoco_benchmark.same_ppo_settings(runs) == ["A-v5"]


def test_levers_table_lists_finished_paused_and_stopped_runs(tmp_path):
    evaluations = [dict(steps=50_000, det_mean=10.0), dict(steps=100_000, det_mean=5.0)]
    for lever, folder in (("a", "runs"), ("b", "progress"), ("c", "progress")):
        (tmp_path / lever / folder).mkdir(parents=True)
        record = dict(algo="fpo", env="Ant-v5", seed=0, evaluations=evaluations)
        if folder == "progress":
            record.update(checkpoint="fpo_Ant-v5_seed0_steps100000.zip", statistics=None)
        (tmp_path / lever / folder / "fpo_Ant-v5_seed0.json").write_text(json.dumps(record))
    (tmp_path / "b" / "progress" / "fpo_Ant-v5_seed0_steps100000.zip").write_bytes(b"")  # c's was not kept
    rows = mujoco_benchmark.levers_table(tmp_path).splitlines()
    assert rows[2:] == [
        "| a | Ant-v5 | 0 | 100k | 5 | 10 | finished |",
        "| b | Ant-v5 | 0 | 100k | 5 | 10 | paused |",
        "| c | Ant-v5 | 0 | 100k | 5 | 10 | stopped |",
    ]


def test_optuna_table_ranks_completed_trials(tmp_path):
    optuna = pytest.importorskip("optuna")
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = tmp_path / "study.log"
    study = optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(journal))), direction="maximize")
    params = dict(n_epochs=10, learning_rate=3e-4, clip_range=0.2, trust_region="aspo", ratio_mode="per_sample")
    params.update(n_samples=8, flow_steps=10, velocity_net_arch="wide", critic_net_arch="medium")
    attrs = dict(n_steps=256, batch_size=128, gamma=0.99, gae_lambda=0.95)
    dists = {k: optuna.distributions.CategoricalDistribution([v]) for k, v in params.items()}
    for value, extra in ((5.0, {}), (40.0, {"reference": "preset"})):
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, value=value, user_attrs={**attrs, **extra})
        )
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "optuna_table.py"
    out = subprocess.run([sys.executable, str(script), str(journal), "s"], capture_output=True, text=True, check=True)
    rows = out.stdout.splitlines()
    assert rows[2].startswith("| 1 (preset) | 40 | 256 | 128 | 10 | 0.0003 | 0.99 | 0.95 | 0.2 | aspo |")
    assert rows[3].startswith("| 0 | 5 |")
    assert rows[-1] == "3 trials: 2 complete, 1 pruned"


def test_action_drift_reports_the_raw_actions_against_the_bounds(capsys):
    import action_drift
    from conftest import SMALL, TargetEnv

    from sb3_fpo import FPO

    env = TargetEnv()
    env.action_space = gym.spaces.Box(-0.5, 0.5, (2,), dtype=np.float32)
    model = FPO("MlpPolicy", env, seed=0, **SMALL)
    model.learn(2 * SMALL["n_steps"], callback=action_drift.ActionDrift())
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["t"] for r in records] == [SMALL["n_steps"], 2 * SMALL["n_steps"]]
    actions = model.rollout_buffer.actions  # the second rollout's raw actions (no clipping without the option)
    last = records[-1]
    assert last["oob"] == pytest.approx(float((np.abs(actions) > 0.5).mean())) and 0.3 < last["oob"] < 0.9
    assert last["abs"] == pytest.approx(float(np.abs(actions).mean()))
    assert last["a2"] == pytest.approx(float((np.clip(actions, -0.5, 0.5) ** 2).sum(-1).mean()))
    assert last["len"] == 5 and last["ret"] < 0


def test_learn_chunk_runs_schedules_over_the_whole_run():
    # The harness learns a run in chunks (one per evaluation); a schedule must see the run's progress, not the chunk's
    from conftest import SMALL, TargetEnv

    from sb3_fpo import FPO

    seen: list[float] = []

    def schedule(progress_remaining: float) -> float:
        seen.append(progress_remaining)
        return 1e-3 * progress_remaining

    model = FPO("MlpPolicy", TargetEnv(), seed=0, learning_rate=schedule, **SMALL)
    seen.clear()  # the constructor's call
    n = SMALL["n_steps"]
    for _ in range(2):
        mujoco_benchmark.learn_chunk(model, 2 * n, 4 * n)
    # one update per rollout (SB3 reads the schedule twice per update); one learn() call would give the same
    assert list(dict.fromkeys(seen)) == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(0.0)
    assert "_update_current_progress_remaining" not in vars(model)


def test_dmc_runs_share_one_shape_and_record_their_backend(tmp_path):
    pytest.importorskip("envpool")
    settings = dict(timesteps=64, eval_freq=64, episodes=1, fpo_conf=str(ROOT / "hyperparams" / "fpo.yml"))
    overrides = {"n_steps": 8, "batch_size": 64}
    for algo in ("fpo", "ppo_tuned", "ppo_default"):
        mujoco_benchmark.run(
            algo, "cartpole-balance", 0, out=str(tmp_path), fpo_overrides=overrides, backend="envpool", **settings
        )
    runs = {r["algo"]: r for r in map(json.loads, map(Path.read_text, (tmp_path / "runs").glob("*.json")))}
    assert {r["backend"] for r in runs.values()} == {"envpool"} and {r["n_envs"] for r in runs.values()} == {8}
    assert all(0 <= r["evaluations"][-1]["det_mean"] <= 1000 for r in runs.values())
    assert "'n_steps': 8" in runs["fpo"]["hyperparams"] and "'n_steps': 256" in runs["ppo_default"]["hyperparams"]
    assert "'clip_range': 0.1" in runs["ppo_tuned"]["hyperparams"] and "clip_range" not in runs["ppo_default"]["hyperparams"]
    table = mujoco_benchmark.report(tmp_path, "command")
    assert "DM Control backend envpool" in table and "| cartpole-balance |" in table
    assert "PPO tuned (lr 3e-4, clip 0.1) |" in table and "PPO zoo-tuned" not in table
    assert mujoco_benchmark.applies("ppo_tuned", "cartpole-balance") and not mujoco_benchmark.applies("ppo", "finger-spin")
    assert mujoco_benchmark.applies("ppo", "Pendulum-v1") and not mujoco_benchmark.applies("ppo_tuned", "Pendulum-v1")
    with pytest.raises(ValueError, match="ppo_tuned is the DM Control baseline"):
        mujoco_benchmark.run("ppo_tuned", "Pendulum-v1", 0, out=str(tmp_path), **settings)


def test_ratio_ci_and_iqm_ci_resample_both_algorithms():
    # Returns in the hundreds (baselines below MIN_DENOMINATOR are left out). Constant runs: the CI is the ratio
    assert mujoco_benchmark.ratio_ci([200.0, 200.0, 200.0], [100.0, 100.0]) == (pytest.approx(2.0), pytest.approx(2.0))
    # Spread only in the baseline: FPO's runs alone would give a point, resampling PPO's widens the CI
    low, high = mujoco_benchmark.ratio_ci([200.0, 200.0, 200.0], [100.0, 300.0, 200.0])
    assert low < 1.0 < high and low >= 2.0 / 3.0 - 1e-9 and high <= 2.0 + 1e-9
    tasks = [
        (np.array([200.0, 200.0, 200.0]), np.array([100.0, 300.0, 200.0])),
        (np.array([100.0, 100.0]), np.array([100.0, 100.0])),
    ]
    fixed = mujoco_benchmark.stratified_bootstrap_ci([fpo / ppo.mean() for fpo, ppo in tasks], n_boot=200)
    both = mujoco_benchmark.iqm_ci_resampling_both(tasks, n_boot=200)
    assert fixed == (pytest.approx(1.0), pytest.approx(1.0)) and both[0] < 1.0 < both[1]
    runs = [
        {"algo": "fpo", "env": "A-v5", "evaluations": [{"det_mean": v} for v in (10.0, 20.0, 30.0, 40.0)]},
        {"algo": "ppo", "env": "A-v5", "evaluations": [{"det_mean": 20.0}]},
    ]
    assert mujoco_benchmark.last_three(runs, "fpo") == [30.0]
    assert [(f.tolist(), p.tolist()) for f, p in mujoco_benchmark.best_ppo_pairs(runs).values()] == [([40.0], [20.0])]


def test_tasks_level_or_ahead_compares_fpo_with_the_better_baseline_of_each_task():
    def run(algo, env, value):
        return {"algo": algo, "env": env, "evaluations": [{"det_mean": value}]}

    runs = [
        run("fpo", "A", 100.0), run("ppo_default", "A", 100.0), run("ppo_tuned", "A", 50.0),  # level with the better
        run("fpo", "B", 90.0), run("ppo_default", "B", 80.0), run("ppo_tuned", "B", 95.0),  # behind the better
        run("fpo", "C", 5.0), run("ppo_tuned", "C", 0.0),  # ahead of a baseline at 0
        run("fpo", "D", 5.0),  # no baseline: not compared
    ]  # fmt: skip
    assert mujoco_benchmark.tasks_level_or_ahead(runs) == (["A", "C"], ["A", "B", "C"])


def test_bootstrap_cis_leave_out_draws_whose_baseline_is_near_zero():
    # An unsolved seed in the baseline: a draw of only that seed has a mean of 0.5, below MIN_DENOMINATOR
    fpo, ppo = [100.0, 100.0, 100.0], [0.5, 200.0, 200.0]
    low, high = mujoco_benchmark.ratio_ci(fpo, ppo)
    assert 0.5 - 1e-9 <= low < high <= 100.0 / (200.5 / 3) + 1e-9
    both = mujoco_benchmark.iqm_ci_resampling_both([(np.array(fpo), np.array(ppo))], n_boot=500)
    assert np.isfinite(both).all() and both[1] <= 100.0 / (200.5 / 3) + 1e-9
    runs = [
        {"algo": "fpo", "env": "A-v5", "evaluations": [{"det_mean": 3.0}]},
        {"algo": "ppo", "env": "A-v5", "evaluations": [{"det_mean": 0.5}]},
    ]
    assert mujoco_benchmark.best_ppo_pairs(runs) == {}


@pytest.mark.parametrize("clamp, acts", [(1e-4, True), (None, False)])
def test_guard_recorder_counts_the_updates_a_guard_acted_in(clamp, acts):
    import defaults_check
    from conftest import SMALL, TargetEnv

    from sb3_fpo import FPO

    model = FPO("MlpPolicy", TargetEnv(), seed=0, **{**SMALL, "learning_rate": 1e-2}, log_ratio_clamp=clamp)
    recorder = defaults_check.GuardRecorder()
    model.learn(3 * SMALL["n_steps"], callback=recorder)
    summary = recorder.summary()
    assert summary["updates"] == 3  # each update read once, the last one at the end of training
    # a clamp of 1e-4 catches some pair after the first minibatch of each update; without a clamp nothing is logged
    assert (summary["log_ratio_clamp_acted"] == 3) is acts and (summary["log_ratio_clamp_acted"] == 0) is not acts
    assert summary["ratio_max"] > 1.0 and summary["grad_norm_max"] > 0


def test_arm_trace_records_one_point_per_chunk(tmp_path):
    import arm_trace

    line = arm_trace.trace("fpo", seed=0, every=2048, episodes=1, out=str(tmp_path), timesteps=4096)
    record = json.loads((tmp_path / "arm_full_fpo_seed0.json").read_text())
    assert [p["steps"] for p in record["points"]] == [2048, 4096] and line.startswith("fpo seed 0:")
    for point in record["points"]:
        assert (
            0.0 <= point["success"] <= 1.0
            and 0.0 <= point["success_stochastic"] <= 1.0
            and 0.0 <= point["outside_fraction"] <= 1.0
        )
        assert point["raw_action_std"] > 0.0


def test_decay_linearly_follows_the_total_steps_across_learn_calls():
    import defaults_check
    from conftest import SMALL, TargetEnv

    from sb3_fpo import FPO

    model = FPO("MlpPolicy", TargetEnv(), seed=0, **{**SMALL, "learning_rate": 1e-3})
    total = 4 * SMALL["n_steps"]
    defaults_check.decay_linearly(model, total)
    for chunk in (1, 2, 3):
        model.learn(SMALL["n_steps"], reset_num_timesteps=False)
        # each update uses the rate at its step count, not SB3's progress of the current learn call
        assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - chunk / 4))


def test_welch_z_by_hand():
    import dmc_backends

    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0, 8.0])  # variances 1 and 20/3
    assert dmc_backends.welch_z(a, b) == pytest.approx((2.0 - 5.0) / np.sqrt(1 / 3 + 20 / 3 / 4))


def test_eval_envs_check_evaluates_both_ways(tmp_path):
    pytest.importorskip("envpool")
    command = [
        sys.executable, "benchmarks/eval_envs_check.py", "--tasks", "cartpole-balance", "--algos", "fpo",
        "--timesteps", "64", "--episodes", "2", "--envs", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "cartpole-balance_fpo.json").read_text())
    for mode in ("deterministic", "stochastic"):
        assert len(record[mode]["one_env"]) == len(record[mode]["many_envs"]) == 2
        assert all(0 <= r <= 1000 for r in record[mode]["one_env"] + record[mode]["many_envs"])
    # the two ways play other episodes (other env seeds): zero-sampling's returns differ
    assert set(record["deterministic"]["one_env"]).isdisjoint(record["deterministic"]["many_envs"])
    assert "| cartpole-balance | fpo | deterministic |" in (tmp_path / "table.md").read_text()


def test_a_run_paused_before_its_first_chunk_leaves_no_training_log(tmp_path):
    pytest.importorskip("mujoco")
    settings = dict(timesteps=64, eval_freq=64, episodes=1, fpo_conf=str(ROOT / "hyperparams" / "fpo.yml"))
    message = mujoco_benchmark.run(
        "fpo", "InvertedPendulum-v5", 0, out=str(tmp_path), deadline=0.0, train_log=True, **settings
    )
    assert "paused at 0 steps" in message and not (tmp_path / "train_logs").exists()


def test_ratios_over_a_baseline_near_zero_are_not_given(tmp_path):
    pytest.importorskip("matplotlib")

    def record(algo, seed, value):
        evaluation = dict(steps=1000, det_mean=value, det_std=0.0, sto_mean=value, sto_std=0.0, train_time_s=1.0)
        return dict(algo=algo, env="point_mass-easy", seed=seed, evaluations=[evaluation], backend="envpool")

    (tmp_path / "runs").mkdir()
    for name, run in {
        "fpo_0": record("fpo", 0, 700.0),
        "fpo_1": record("fpo", 1, 800.0),
        "ppo_default_0": record("ppo_default", 0, 800.0),
        "ppo_tuned_0": record("ppo_tuned", 0, 2.0),  # an unsolved task (point_mass-easy's ppo_tuned on seeds 100-101)
    }.items():
        (tmp_path / "runs" / f"{name}.json").write_text(json.dumps(run))
    row = next(line for line in mujoco_benchmark.report(tmp_path, "command").splitlines() if "| point_mass-easy |" in line)
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[1:6] == ["750 ± 71", "800", "2", "0.94", "—"]  # FPO / PPO tuned is not 375


def test_train_log_summary_joins_a_resumed_runs_logs_and_counts_updates_over_the_clamp(tmp_path):
    import train_log_summary

    def write(name, rows, clipped=False):
        directory = tmp_path / "train_logs" / name
        directory.mkdir(parents=True)
        header = "time/total_timesteps,train/cfm_loss,train/learning_rate"
        header += ",train/clipped_action_fraction" if clipped else ""
        body = [",".join(map(str, row)) for row in rows]
        (directory / "progress.csv").write_text("\n".join([header, *body]) + "\n")

    write("fpo_a_seed0_from0", [(2048, "", ""), (4096, 1.5, 1e-3), (6144, 30.0, 5e-4)])  # the first rollout: no train/
    write("fpo_a_seed0_from6144", [(8192, 1e6, 2e-4)])
    write("fpo_b_seed0_from0", [(2048, 0.5, 3e-4, 0.1), (4096, 0.7, 3e-4, 0.3)], clipped=True)
    write("ppo_default_a_seed0_from0", [(2048, 99.0, 3e-4)])  # not an FPO run
    runs = train_log_summary.load_run_logs(tmp_path)
    assert sorted(runs) == ["fpo_a_seed0", "fpo_b_seed0"]
    a = train_log_summary.summarize(runs["fpo_a_seed0"])
    assert a["updates"] == 3 and a["median_cfm"] == 30.0 and a["max_cfm"] == 1e6
    assert a["updates_over_clamp"] == 2 and a["first_over_clamp_step"] == 6144 and a["final_learning_rate"] == 2e-4
    assert a["largest_learning_rate"] == 1e-3
    assert a["median_clipped_fraction"] is None
    b = train_log_summary.summarize(runs["fpo_b_seed0"])
    assert b["updates_over_clamp"] == 0 and b["first_over_clamp_step"] is None
    assert b["median_clipped_fraction"] == pytest.approx(0.2)
    text = train_log_summary.table([tmp_path])
    assert "| fpo_a_seed0 (unfinished) | 3 | 30.00 | 1e+06 | 2 (from 6144) | — | 1.0e-03, 2.0e-04 |" in text
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "fpo_b_seed0.json").write_text("{}")
    assert "| fpo_b_seed0 | 2 | 0.60 | 0.7 | 0 | 0.20 | 3.0e-04, 3.0e-04 |" in train_log_summary.table([tmp_path])

"""The rl-zoo3 entry ``python -m sb3_fpo.zoo`` (console script ``sb3-fpo-zoo``): training, presets, Optuna, scripts."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("rl_zoo3")
optuna = pytest.importorskip("optuna")

import rl_zoo3  # noqa: E402
import rl_zoo3.enjoy  # noqa: E402
import rl_zoo3.exp_manager  # noqa: E402
import rl_zoo3.train  # noqa: E402
import yaml  # noqa: E402  (a dependency of rl-zoo3 and Optuna)
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

from sb3_fpo import FPO, zoo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = "Pendulum-v1"
# 1024 Pendulum steps: 4 envs (the preset's) x 128 steps per rollout, evaluated every 512 steps
TRAIN_ARGS = ["--algo", "fpo", "--env", ENV, "-n", "1024", "--eval-freq", "512", "--eval-episodes", "2", "--seed", "0"]
TINY = ["--device", "cpu", "--hyperparams", "n_steps:128", "n_epochs:1", "policy_kwargs:dict(flow_steps=4)"]
# Cheap values inside the sampler's search space, enqueued so that the optimisation tests are fast and repeatable
CHEAP_TRIAL = dict(
    n_steps_pow=6,
    batch_size_pow=6,
    n_epochs=1,
    learning_rate=1e-3,
    one_minus_gamma=0.1,
    one_minus_gae_lambda=0.05,
    clip_range=0.2,
    trust_region="ppo",
    ratio_mode="averaged",
    n_samples=4,
    flow_steps=5,
    velocity_net_arch="paper",
    critic_net_arch="small",
)
# A gym package for --gym-packages: Pendulum whose rewards turn NaN after `after` steps
NAN_ENV_MODULE = """
import gymnasium as gym


class NanAfter(gym.Wrapper):
    def __init__(self, env, after):
        super().__init__(env)
        self.after, self.n = after, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.n += 1
        return obs, float("nan") if self.n > self.after else reward, terminated, truncated, info


def make(after=10, **kwargs):
    return NanAfter(gym.make("Pendulum-v1", **kwargs), after)


gym.register("NanPendulum-v0", entry_point=make)
"""


def run_zoo(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m sb3_fpo.zoo ARGS`` in a subprocess (one torch thread: two may run side by side)."""
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sb3_fpo.zoo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def journal(path: Path):
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def new_study(storage, name: str, *trials: dict) -> None:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for params in trials:
        study.enqueue_trial(params)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Log folder of two short FPO runs on Pendulum-v1 (seeds 0 and 1) trained through the entry point."""
    folder = tmp_path_factory.mktemp("zoo")
    cwd = os.getcwd()
    os.chdir(folder)  # not the repository: the presets must be found without it
    try:
        for seed in ("0", "1"):
            args = [*TRAIN_ARGS, "-f", str(folder / "logs"), *TINY]
            args[args.index("--seed") + 1] = seed
            zoo.main(["train", *args])
    finally:
        os.chdir(cwd)
    return folder / "logs"


# ---------------------------------------------------------------------------------------------------- registration


def test_register_adds_fpo_to_the_zoo_tables():
    zoo.register()
    for table in (rl_zoo3.ALGOS, rl_zoo3.train.ALGOS, rl_zoo3.exp_manager.ALGOS, rl_zoo3.enjoy.ALGOS):
        assert table["fpo"] is FPO
        assert table["ppo"] is PPO
    assert HYPERPARAMS_SAMPLER["fpo"] is zoo.sample_fpo_params
    assert HYPERPARAMS_CONVERTER["fpo"] is zoo.convert_fpo_params
    assert rl_zoo3.train.ExperimentManager is zoo.FPOExperimentManager
    zoo.register()  # idempotent
    assert rl_zoo3.ALGOS["fpo"] is FPO


def test_project_envs_are_registered():
    # importing sb3_fpo (and so sb3_fpo.zoo) registers the project's environments
    assert "TwoGoal-v0" in gym.registry


def test_presets_are_shipped_in_the_package():
    # One file: sb3_fpo/fpo.yml links to the repository's hyperparams/fpo.yml and is listed as package data
    presets = ROOT / "hyperparams" / "fpo.yml"
    link = ROOT / "sb3_fpo" / "fpo.yml"
    assert link.is_symlink() and link.resolve() == presets.resolve()
    assert zoo.HYPERPARAMS_FILE.read_bytes() == presets.read_bytes()  # the installed package's copy, or the link
    assert "fpo.yml" in (ROOT / "setup.cfg").read_text().split("[options.package_data]")[1].split("[")[0]


def test_presets_cover_the_envs_without_gaussian_options():
    text = zoo.HYPERPARAMS_FILE.read_text()
    presets = yaml.safe_load(text)
    expected = {
        "default",
        "Pendulum-v1",
        "MountainCarContinuous-v0",
        "HalfCheetah-v5",
        "Hopper-v5",
        "Walker2d-v5",
        "Ant-v5",
        "Swimmer-v5",
        "Humanoid-v5",
        "InvertedPendulum-v5",
        "InvertedDoublePendulum-v5",
        "Reacher-v5",
        "TwoGoal-v0",
    }
    assert expected <= set(presets)
    for name, preset in presets.items():
        assert preset.get("ent_coef", 0) == 0 and "use_sde" not in preset, name


@pytest.mark.parametrize("env_id", sorted(set(yaml.safe_load((ROOT / "hyperparams" / "fpo.yml").read_text())) - {"default"}))
def test_preset_builds_an_fpo_model(env_id, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT (deprecation warnings of its models) in the cwd
    zoo.register()
    if env_id not in gym.registry:
        pytest.skip(f"{env_id} is not registered here")
    try:
        gym.make(env_id).close()
    except (ImportError, gym.error.DependencyNotInstalled) as error:
        pytest.skip(f"{env_id}: {error}")
    manager = zoo.FPOExperimentManager(argparse.Namespace(), "fpo", env_id, str(tmp_path), eval_freq=-1, device="cpu")
    result = manager.setup_experiment()
    assert result is not None
    model, saved = result
    assert isinstance(model, FPO)
    assert model.n_steps == saved["n_steps"] and model.n_samples == saved["n_samples"]
    assert model.env is not None and model.env.num_envs == saved.get("n_envs", 1)
    model.env.close()


# ---------------------------------------------------------------------------------------------------- train / enjoy


def test_train_saves_model_and_evaluations(trained):
    run = trained / "fpo" / f"{ENV}_1"
    model = FPO.load(run / f"{ENV}.zip", device="cpu")
    assert model.num_timesteps == 1024 and model.n_steps == 128 and model.n_epochs == 1
    assert model.policy.flow_steps == 4
    assert (run / "best_model.zip").is_file()
    evaluations = np.load(run / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [512, 1024]
    assert evaluations["results"].shape == (2, 2)
    config = yaml.load((run / ENV / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert dict(config)["n_samples"] == 8 and dict(config)["gamma"] == 0.9  # the fpo.yml preset
    assert (trained / "fpo" / f"{ENV}_2" / f"{ENV}.zip").is_file()


def test_enjoy(trained, capsys):
    zoo.main(["enjoy", "--algo", "fpo", "--env", ENV, "-f", str(trained), "-n", "300", "--no-render", "--device", "cpu"])
    out = capsys.readouterr().out
    assert f"Loading {trained}/fpo/{ENV}_2/{ENV}.zip" in out  # the latest run
    assert "Episode Reward" in out and "Mean reward" in out


def test_record_video(trained, tmp_path):
    pytest.importorskip("pygame", reason="Pendulum renders with pygame (gymnasium[classic-control])")
    pytest.importorskip("moviepy")
    zoo.main(["record_video", "--algo", "fpo", "--env", ENV, "-f", str(trained), "-n", "20", "-o", str(tmp_path)])
    assert list(tmp_path.glob("*.mp4"))


def test_plot_scripts(trained, tmp_path, monkeypatch):
    pytest.importorskip("seaborn")
    pytest.importorskip("scipy")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    zoo.main(["plot_train", "-a", "fpo", "-e", ENV, "-f", str(trained), "-w", "2"])
    zoo.main(["all_plots", "-a", "fpo", "-e", ENV, "-f", str(trained), "--no-display", "-o", "results", "-max", "5000"])
    # plot_from_file needs two runs or more per (algo, env), each with two eval episodes or more (else the
    # zoo squeezes the results to a scalar, skips it and fails on min() of nothing)
    zoo.main(["plot_from_file", "-i", "results.pkl", "-o", "figure", "--format", "png", "--no-million"])
    assert (tmp_path / "results.pkl").is_file() and (tmp_path / "figure").stat().st_size > 0


def test_plot_from_file_with_one_run_says_what_to_do(trained, tmp_path, monkeypatch):
    pytest.importorskip("seaborn")
    pytest.importorskip("scipy")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    one_run = tmp_path / "logs"
    shutil.copytree(trained / "fpo" / f"{ENV}_1", one_run / "fpo" / f"{ENV}_1")
    zoo.main(["all_plots", "-a", "fpo", "-e", ENV, "-f", str(one_run), "--no-display", "-o", "results", "-max", "5000"])
    # The zoo squeezes one run's results to a scalar, skips it and then fails on min() of an empty sequence
    with pytest.raises(SystemExit, match=r"at least two runs.*FPO.*Pendulum-v1.*--seed"):
        zoo.main(["plot_from_file", "-i", "results.pkl", "-o", "figure", "--format", "png", "--no-million"])


def test_ppo_still_works_through_the_entry(tmp_path, capsys):
    args = ["--algo", "ppo", "--env", ENV, "-n", "512", "--eval-freq", "-1", "-f", str(tmp_path), "--device", "cpu"]
    zoo.main(["train", *args, "--hyperparams", "n_steps:64"])
    out = capsys.readouterr().out
    assert str(Path("rl_zoo3") / "hyperparams" / "ppo.yml") in out  # the zoo's own presets
    assert PPO.load(tmp_path / "ppo" / f"{ENV}_1" / f"{ENV}.zip").num_timesteps == 512


def test_bad_input_fails_with_the_zoo_messages(tmp_path, capsys):
    result = run_zoo("train", "--algo", "fpo", "--env", "Pendulm-v1", "-f", str(tmp_path), cwd=tmp_path)
    assert result.returncode != 0
    assert "Pendulm-v1 not found in gym registry, you maybe meant Pendulum-v1?" in result.stderr

    with pytest.raises(SystemExit) as error:
        zoo.main(["train", "--algo", "fpoo", "--env", ENV])
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert "argument --algo: invalid choice: 'fpoo'" in err and "'fpo'" in err

    with pytest.raises(SystemExit, match="unknown script 'trian'"):
        zoo.main(["trian"])
    zoo.main(["--help"])
    assert "train,enjoy,record_video,plot_train,plot_from_file,all_plots" in capsys.readouterr().out


def test_console_script_is_declared():
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    if "sb3-fpo-zoo" not in scripts:
        pytest.skip("sb3_fpo installed before the console script existed: pip install -e . again")
    assert scripts["sb3-fpo-zoo"] == "sb3_fpo.zoo:main"


# ---------------------------------------------------------------------------------------------------- Optuna


@pytest.mark.filterwarnings("error:You have specified a mini-batch size")  # batch_size is capped at n_steps
def test_sampler_and_converter_agree_and_build_models():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    for _ in range(12):
        trial = study.ask()
        hyperparams = zoo.sample_fpo_params(trial, 1, 4, {})
        assert zoo.convert_fpo_params(trial.params) == hyperparams
        assert {"n_samples", "clip_range", "ratio_mode", "trust_region", "learning_rate", "batch_size", "n_steps"} <= set(
            hyperparams
        )
        assert {"n_epochs", "gamma", "gae_lambda"} <= set(hyperparams)
        assert set(hyperparams["policy_kwargs"]) == {"flow_steps", "velocity_net_arch", "net_arch", "source_std"}
        assert hyperparams["batch_size"] <= hyperparams["n_steps"]
        model = FPO("MlpPolicy", "Pendulum-v1", device="cpu", **hyperparams)
        assert model.policy.flow_steps == hyperparams["policy_kwargs"]["flow_steps"]
        assert model.policy.source_std == hyperparams["policy_kwargs"]["source_std"]
        study.tell(trial, 0.0)
    assert len({t.params["source_std"] for t in study.trials}) > 1


def test_converter_reloads_a_trial_sampled_before_source_std():
    # A study from before source_std was searched: --trial-id must still rebuild its trial, with the default
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1), direction="maximize")
    trial = study.ask()
    sampled = zoo.sample_fpo_params(trial, 1, 4, {})
    old_params = {name: value for name, value in trial.params.items() if name != "source_std"}
    reloaded = zoo.convert_fpo_params(old_params)
    assert reloaded["policy_kwargs"].pop("source_std") == 1.0
    sampled["policy_kwargs"].pop("source_std")
    assert reloaded == sampled


@pytest.mark.parametrize("storage_kind", ["journal", "sqlite"])
def test_distributed_optimisation_two_workers_then_load_trials(storage_kind, tmp_path, capsys):
    if storage_kind == "journal":
        storage_arg = str(tmp_path / "study.log")  # the zoo opens a JournalStorage for a .log path
        storage = journal(tmp_path / "study.log")
    else:
        storage_arg = storage = f"sqlite:///{tmp_path / 'study.db'}"
    new_study(storage, "fpo-pendulum", CHEAP_TRIAL, {**CHEAP_TRIAL, "ratio_mode": "per_sample", "trust_region": "aspo"})
    worker_args = [
        "train", "--algo", "fpo", "--env", ENV, "-optimize", "--n-trials", "1", "-n", "256", "--n-evaluations", "1",
        "--eval-episodes", "1", "--storage", storage_arg, "--study-name", "fpo-pendulum", "-f", str(tmp_path / "logs"),
        "--no-optim-plots", "--device", "cpu", "-uuid", "--hyperparams", "n_envs:1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = []
    for seed in (1, 2):
        if workers and storage_kind == "sqlite":
            # SQLite ignores SELECT ... FOR UPDATE: two workers asking at the same instant can both take the same
            # *enqueued* trial (sampled trials are not affected). Start the second once the first holds trial 0.
            deadline = time.monotonic() + 60
            while optuna.load_study(storage=storage, study_name="fpo-pendulum").trials[0].state.name == "WAITING":
                assert time.monotonic() < deadline and workers[0].poll() is None, "the first worker never started"
                time.sleep(0.2)
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "sb3_fpo.zoo", *worker_args, "--seed", str(seed)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    study = optuna.load_study(storage=storage, study_name="fpo-pendulum")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert sorted(trial.params["ratio_mode"] for trial in study.trials) == ["averaged", "per_sample"]
    assert study.trials[0].user_attrs["n_steps"] == 64
    assert list((tmp_path / "logs" / "fpo").glob("report_*.csv"))

    # --trial-id N trains with trial N's parameters (through the converter), 0 included
    for number in (0, 1):
        zoo.main([
            "train", "--algo", "fpo", "--env", ENV, "-n", "256", "--eval-freq", "-1", "--device", "cpu",
            "--storage", storage_arg, "--study-name", "fpo-pendulum", "--trial-id", str(number),
            "-f", str(tmp_path / "trained"), "--hyperparams", "n_envs:1",
        ])  # fmt: skip
        assert "Loading from Optuna study..." in capsys.readouterr().out
        model = FPO.load(tmp_path / "trained" / "fpo" / f"{ENV}_{number + 1}" / f"{ENV}.zip", device="cpu")
        params = study.trials[number].params
        assert model.ratio_mode == params["ratio_mode"] and model.trust_region == params["trust_region"]
        assert model.n_steps == 64 and model.n_samples == 4 and model.gamma == pytest.approx(0.9)
        assert model.policy.flow_steps == 5 and model.policy.velocity_net_arch == [32, 32, 32, 32]


@pytest.mark.parametrize("where", ["rollout", "evaluation"])
def test_nan_during_a_trial_prunes_it(where, tmp_path, monkeypatch, capsys):
    # A NaN reward in the training rollout makes FPO raise ValueError (the zoo prunes the trial); a NaN only in
    # the evaluation env gives a NaN trial value (FPOExperimentManager prunes it). The study goes on.
    (tmp_path / "nan_env_module.py").write_text(NAN_ENV_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    new_study(journal(tmp_path / "study.log"), "nan", CHEAP_TRIAL, CHEAP_TRIAL)
    train_after = "10" if where == "rollout" else "1000000"
    zoo.main([
        "train", "--algo", "fpo", "--env", "NanPendulum-v0", "--gym-packages", "nan_env_module", "-optimize",
        "--n-trials", "2", "-n", "128", "--n-evaluations", "1", "--eval-episodes", "1", "--device", "cpu",
        "--storage", str(tmp_path / "study.log"), "--study-name", "nan", "-f", str(tmp_path / "logs"),
        "--no-optim-plots", "--env-kwargs", f"after:{train_after}", "--eval-env-kwargs", "after:10",
        "--hyperparams", "n_envs:1",
    ])  # fmt: skip
    out = capsys.readouterr().out
    study = optuna.load_study(storage=journal(tmp_path / "study.log"), study_name="nan")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert "No trial of the study completed" in out
    if where == "rollout":
        assert "The rollout contains NaN or inf rewards" in out

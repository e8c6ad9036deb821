"""The examples run end to end (tiny budgets)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_two_goal_example_end_to_end(tmp_path):
    pytest.importorskip("matplotlib")
    command = [
        sys.executable, "examples/two_goal.py", "--variants", "preset", "--seeds", "0", "--timesteps", "1024",
        "--checkpoints", "1", "--samples", "100", "--episodes", "3", "--workers", "1", "--out", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| fpo | preset | 1024 |" in result.stdout and "| ppo | gaussian | 1024 |" in result.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert {(r["algo"], r["variant"]) for r in results} == {("fpo", "preset"), ("ppo", "gaussian")}
    checkpoint = results[0]["checkpoints"][0]
    assert len(checkpoint["sarle"]) == 3 and 0 <= checkpoint["success"] <= 1
    for name in ("fpo_action_samples.png", "fpo_trajectories.png", "ppo_action_samples.png", "ppo_trajectories.png"):
        assert (tmp_path / name).stat().st_size > 1000
    replot = subprocess.run([*command, "--replot"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert replot.returncode == 0, replot.stderr[-3000:]


def reject_nan(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON: write null")


def test_under_conditioned_study_end_to_end(tmp_path):
    pytest.importorskip("mujoco")
    pytest.importorskip("matplotlib")
    command = [
        sys.executable, "examples/under_conditioned.py", "--seeds", "0", "--sweep-seeds", "0", "--levels", "full",
        "minimal", "--timesteps", "64", "--episodes", "2", "--workers", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PPO setting: ppo" in result.stdout and "| minimal | 0.25 |" in result.stdout
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0] == "algo,level,seed,success,return,tracking_error"
    assert sorted(row.split(",")[0] + row.split(",")[1] for row in rows[1:]) == [
        "fpofull",
        "fpominimal",
        "ppofull",
        "ppominimal",
    ]
    for name in ("summary.md", "success_by_level.png", "action_samples.png"):
        assert (tmp_path / name).stat().st_size > 500
    # one seed has no confidence interval: the table says so instead of printing "nan [nan, nan]"
    summary = (tmp_path / "summary.md").read_text()
    assert "nan" not in summary.lower() and "1 seed" in summary


def test_under_conditioned_rerun_with_library_defaults_and_a_given_ppo_setting(tmp_path):
    pytest.importorskip("mujoco")
    pytest.importorskip("matplotlib")
    command = [
        sys.executable, "examples/under_conditioned.py", "--fpo", "fpo_defaults", "--ppo-setting", "ppo_std-1",
        "--seeds", "100", "--levels", "full", "--timesteps", "64", "--episodes", "2", "--workers", "1",
        "--out", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # no sweep: only the two runs of the given settings
    runs = sorted(path.name for path in (tmp_path / "runs").glob("*.json"))
    assert runs == ["fpo_defaults_full_seed100.json", "ppo_std-1_full_seed100.json"]
    record = json.loads((tmp_path / "runs" / "fpo_defaults_full_seed100.json").read_text())
    assert "cfm_loss_clamp" not in record["settings"] and "policy_kwargs" not in record["settings"]
    summary = (tmp_path / "summary.md").read_text()
    assert "`fpo_defaults` (the library defaults" in summary and "`ppo_std-1` (log_std_init -1" in summary


def test_under_conditioned_scripted_controllers_show_the_ceilings(tmp_path):
    pytest.importorskip("mujoco")
    command = [sys.executable, "examples/under_conditioned.py", "scripted", "--episodes", "4", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    scripted = json.loads((tmp_path / "scripted.json").read_text())
    for level in ("full", "partial", "minimal"):
        assert scripted[f"{level}/oracle"]["success"] == 1.0
        assert scripted[f"{level}/average_of_styles"]["tracked_some_style"] == 0.0
        assert scripted[f"{level}/follow_style_2"]["tracked_some_style"] == 1.0


def test_behaviour_cloning_multimodal_example_end_to_end(tmp_path):
    pytest.importorskip("matplotlib")
    command = [
        sys.executable, "examples/behaviour_cloning.py", "multimodal", "--seeds", "0", "--episodes", "10", "--epochs",
        "2", "--eval-episodes", "2", "--samples", "50", "--out", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "multimodal.json").read_text(), parse_constant=reject_nan)  # strict JSON
    assert rows[0]["seed"] == 0 and set(rows[0]) >= {"flow", "gaussian"}
    assert 0 <= rows[0]["flow"]["success_sampled"] <= 1 and "| 0 | gaussian |" in (tmp_path / "multimodal.md").read_text()
    for name in ("flow_clone_action_samples.png", "gaussian_clone_action_samples.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_export_onnx_example_plays_the_same_returns_without_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    command = [sys.executable, "examples/export_onnx.py", "--timesteps", "512", "--episodes", "2", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    torch_returns = next(line for line in lines if line.startswith("torch returns:")).split(":")[1].split()
    onnx_returns = next(line for line in lines if line.startswith("onnxruntime returns:")).split(":")[1].split()
    assert len(torch_returns) == 2 and onnx_returns == torch_returns
    assert "torch imported: False | stable_baselines3 imported: False" in lines

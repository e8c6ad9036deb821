"""The README's quickstart entry point, ``python -m sb3_fpo``, on a tiny budget."""

from sb3_fpo import FPO
from sb3_fpo.__main__ import main


def test_quickstart_cli_trains_saves_and_evaluates(tmp_path, capsys):
    mean = main(["--timesteps", "4096", "--eval-episodes", "2", "--save", str(tmp_path / "model")])
    out = capsys.readouterr().out
    assert "FPO on Pendulum-v1: 4096 steps" in out and "Zero-sampling return" in out
    assert -2000 < mean <= 0
    assert FPO.load(tmp_path / "model").num_timesteps == 4096

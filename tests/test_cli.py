"""The README's quickstart entry point, ``python -m sb3_fpo``, on a tiny budget."""

from sb3_fpo import FPO
from sb3_fpo.__main__ import main


def test_quickstart_cli_trains_saves_and_evaluates(tmp_path, capsys):
    mean = main(["--timesteps", "4096", "--eval-episodes", "2", "--save", str(tmp_path / "model")])
    out = capsys.readouterr().out
    assert "FPO on Pendulum-v1: 4096 steps" in out and "Zero-sampling return" in out
    assert -2000 < mean <= 0
    assert FPO.load(tmp_path / "model").num_timesteps == 4096


def test_entry_points_use_one_torch_thread_unless_told(monkeypatch):
    import torch as th

    from sb3_fpo.zoo import limit_torch_threads

    before = th.get_num_threads()
    try:
        th.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert limit_torch_threads() == 2  # the user's choice stands
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert limit_torch_threads() == 1
    finally:
        th.set_num_threads(before)

"""The Python snippets of the README and of the docs' manual run as written (with a tiny training budget)."""

import re
from pathlib import Path

import pytest

from sb3_fpo import FPO

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SNIPPETS = [
    snippet
    for page in (README, ROOT / "docs" / "guide" / "manual.md")
    for snippet in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
]


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = SNIPPETS[index].replace("100_000", "64").replace("progress_bar=True", "progress_bar=False")
    code = code.replace("verbose=1", "verbose=0").replace("n_epochs=100", "n_epochs=2")
    namespace: dict = {}
    exec(compile(code, f"README.md snippet {index}", "exec"), namespace)
    if ".learn(" in code:  # a snippet that trains leaves a model that has taken steps
        assert any(isinstance(value, FPO) and value.num_timesteps > 0 for value in namespace.values())


def test_readme_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    commands = [line for line in lines[:15] if line.startswith("pip install")]
    assert len(commands) == 2
    assert commands[0].endswith("python -m sb3_fpo")
    assert commands[1].endswith("python -m pytest -n 2")

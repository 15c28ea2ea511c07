"""The README's Python example runs as written (in a temporary folder)."""
import os
import re

import pytest

from conftest import REPO


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    path = os.path.join(REPO, "README.md")
    if not os.path.exists(path):
        pytest.skip("not run from the repository")
    text = open(path, encoding="utf-8").read()
    m = re.search(r"<!-- PYTHON EXAMPLE BEGIN -->\n```python\n(.*?)```\n"
                  r"<!-- PYTHON EXAMPLE END -->", text, re.S)
    assert m, "the README's Python example block is missing"
    monkeypatch.chdir(tmp_path)
    exec(compile(m.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "accuracy" in out
    assert out.strip().endswith("0.0")
    assert (tmp_path / "model.npz").exists()

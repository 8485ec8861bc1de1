"""`make demo` must not rot: its quick mode runs the whole pipeline end to end."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_quick_runs_end_to_end(tmp_path):
    env = dict(os.environ, MISEG_QUIET="1")
    out = subprocess.run([sys.executable, "-m", "miseg.demo", "--quick", "--output", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "aligned with its image" in out.stdout and "NOT aligned" not in out.stdout
    evaluation = tmp_path / "demo" / "evaluation"
    assert (evaluation / "heldout_summary.tsv").exists()
    assert (evaluation / "heldout_boxplots.png").exists()
    for fold in range(3):
        assert (evaluation / "cross_validation" / f"fold_{fold}" / ".complete").exists()
    assert (tmp_path / "demo" / "model.keras").exists()

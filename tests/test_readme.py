"""The README says what is true: every code block runs as written, every command it names exists
with the options it shows, its figures are what the commands print, and its links lead somewhere.

Python blocks run against `python app.py` serving the bundled model (only the URL's port differs:
the test picks a free one); bash blocks run in the repository, except the few that install, serve
until stopped or run this whole suite, whose files are checked instead."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app_server import running_app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DEFAULT = ROOT / "models" / "default"
URL = "http://127.0.0.1:7860/"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """A bash block's commands: continuation lines joined, comments and blank lines dropped."""
    text = block.replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def run(command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`command` in bash at the repository's root; on a timeout its whole process group is stopped."""
    proc = subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def test_front_matter_is_a_valid_space_config():
    assert README.startswith("---\n")
    front = yaml.safe_load(README.split("---\n", 2)[1])
    import gradio

    assert front["sdk"] == "gradio" and front["sdk_version"] == gradio.__version__
    assert f"gradio=={front['sdk_version']}" in (ROOT / "requirements.txt").read_text()
    assert str(front["python_version"]) == "3.11" and (ROOT / front["app_file"]).is_file()
    assert {"title", "emoji", "colorFrom", "colorTo", "license"} <= set(front)


def test_readme_is_short_and_puts_the_essentials_first():
    lines = README.splitlines()
    assert len(lines) <= 250
    first = "\n".join(lines[:110])  # two screenfuls: install, first prediction, API call, figures
    for essential in ("pip install -r requirements.txt && python app.py", "api_name=\"/predict\"",
                      "deepfake-detect ", "Test ROC AUC"):
        assert essential in first, essential
    shot = ROOT / "docs" / "images" / "detect.png"
    assert "](docs/images/detect.png)" in README and shot.stat().st_size < 300_000


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_links_lead_somewhere(page):
    path = ROOT / page
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{page}: {target}"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page}: {target}"


def test_the_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -r requirements-dev.txt && python -m pytest" in README
    assert "pip install -q -r requirements-dev.txt" in ci and ci.rstrip().endswith("python -m pytest")


# Commands that install packages, serve until stopped, or run this whole suite: not run here.
NOT_RUN = ("pip install", "python app.py", "python -m pytest")


def test_bash_blocks_run_as_written():
    ran = 0
    for block in blocks("bash"):
        for command in commands(block):
            if any(part in command for part in NOT_RUN):
                for name in re.findall(r"(?:-r |python )(\S+\.(?:txt|py))", command):
                    assert (ROOT / name).is_file(), (command, name)
                continue
            result = run(command)
            assert result.returncode == 0, (command, result.stdout[-1500:], result.stderr[-1500:])
            ran += 1
    assert ran >= 2


def test_python_blocks_run_against_the_app(tmp_path):
    code = blocks("python")
    assert code and all(URL in block for block in code)
    with running_app(DEFAULT, tmp_path / "app.log") as url:
        for block in code:
            result = subprocess.run([sys.executable, "-c", block.replace(URL, url)], cwd=ROOT,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, (block, result.stdout[-2000:], result.stderr[-3000:])


def _table_commands() -> set[str]:
    """The commands the README names as having printed a figure or a table."""
    named = set(re.findall(r"\| `((?:python|deepfake-detect)[^`]*)` \|$", README, flags=re.M)) | \
        set(re.findall(r"\(`(python [^`]+)`\):", README))
    return {c for c in named if not any(part in c for part in NOT_RUN)}


def test_commands_named_in_tables_exist_with_their_options():
    named = _table_commands()
    assert len(named) >= 5
    for command in named:
        args = shlex.split(command)
        script = args[:2] if args[0] == "python" else args[:1]
        result = run(shlex.join([*script, "--help"]), timeout=120)
        assert result.returncode == 0, (command, result.stderr[-1500:])
        for option in (a for a in args if a.startswith("--")):
            assert option in result.stdout, (command, option)


def test_headline_figures_are_what_the_report_prints():
    result = run("python scripts/report.py --summary")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.strip().splitlines()
    assert len(rows) >= 5
    for row in rows:
        assert row in README, f"README's results table is not the bundle's: {row}"


def test_examples_table_is_what_the_served_model_says():
    result = run("python scripts/make_examples.py --check models/default")
    assert result.returncode == 0, f"the bundle's examples are not assets/examples': {result.stderr[-1500:]}"
    rows = result.stdout.strip().splitlines()
    assert {"real", "fake", "uncertain"} <= {row.split(" | ")[2].split(",")[0] for row in rows}, rows
    for row in rows:
        assert row in README, f"README's examples table is not what the model says: {row}"

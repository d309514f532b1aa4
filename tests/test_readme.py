"""README promises two commands; CI must run exactly the test command it gives."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```bash\n")[1:3]
    return [b.split("```")[0].strip() for b in blocks]


def test_readme_gives_install_demo_and_test_commands():
    install, tests = _commands()
    assert install == "pip install -e . && cbs-obs demo"
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    _, tests = _commands()
    assert tests in ci.splitlines()

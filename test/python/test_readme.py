"""The README's Python example runs as written (in a directory holding the snapshot it
names), and so does docs/python.md's set-up line."""

import re
import shutil
import subprocess

from conftest import BUILD, ROOT


def test_the_readme_python_example_runs(corpus, tmp_path):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 3
    shutil.copy(corpus["snapshot"], tmp_path / "state.snap")
    r = subprocess.run(["/usr/bin/python3", "-c", blocks[0]], cwd=tmp_path, capture_output=True,
                       text=True, env={"PYTHONPATH": str(BUILD / "python"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Decision(allow=False, reason='prohibited'")


def test_the_documented_import_line_works():
    r = subprocess.run(["/usr/bin/python3", "-c", "import assent; print(assent.__file__)"],
                       cwd=ROOT, env={"PYTHONPATH": "build/release/python", "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True)
    assert r.returncode == 0 and "build/release/python/assent" in r.stdout, r.stderr

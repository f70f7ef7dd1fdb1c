"""The README's Python snippet (the block after `<!-- readme-python -->`) runs
as written, with only its base URL pointed at the node under test."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
WRITTEN_BASE = "http://127.0.0.1:8080/fhir"


def readme_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    after = text.split("<!-- readme-python -->", 1)[1]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match, "the README has no python block after <!-- readme-python -->"
    return match.group(1)


def test_the_readme_python_snippet_runs_as_written(base):
    snippet = readme_snippet()
    assert WRITTEN_BASE in snippet, "the snippet should use the default gateway address"
    result = subprocess.run(
        [sys.executable, "-c", snippet.replace(WRITTEN_BASE, base)],
        capture_output=True,
        text=True,
        timeout=60,
        # The README's session exports TOKEN; here it is the run's token.
        env={**os.environ, "TOKEN": os.environ["CORRIDOR_TOKEN"]},
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"1 encounter\(s\) for [0-9a-f-]+\n", result.stdout), result.stdout

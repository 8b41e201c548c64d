"""Configuration check: `sluiced -n -f FILE` on the bundled config and on
bad configs.

Each file in cases/ starts with a line `# expect: LINE: MESSAGE` (the
daemon must exit non-zero and print `FILE:LINE: MESSAGE` on stderr) or
`# expect: OK`.  Adding a case is adding a file.

SLUICE_BUILD names the build directory (default: build/ at the top of the
tree this file lives in).
"""
import os
import pathlib
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = pathlib.Path(os.environ.get("SLUICE_BUILD", ROOT / "build"))
SLUICED = BUILD / "sluiced"
CASES = sorted((HERE / "cases").glob("*.conf"))


def check(path):
    if not SLUICED.exists():
        pytest.fail(f"{SLUICED} not built; run make first")
    return subprocess.run([str(SLUICED), "-n", "-f", str(path)],
                          capture_output=True, text=True, timeout=30,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def expectation(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: no expect line"
    return first[len("# expect: "):]


def test_bundled_config_ok():
    r = check(ROOT / "etc" / "sluice.conf")
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout + r.stderr


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path):
    want = expectation(path)
    r = check(path)
    if want == "OK":
        assert r.returncode == 0, r.stderr
        assert "configuration OK" in r.stdout + r.stderr
        return
    assert r.returncode != 0, f"accepted; stdout: {r.stdout}"
    assert f"{path}:{want}" in r.stderr
    assert "configuration OK" not in r.stdout + r.stderr


def test_every_commented_default_is_valid(tmp_path):
    """Uncommenting every `#key = default;` in the bundled file still
    passes: the documented defaults are in bounds."""
    text = (ROOT / "etc" / "sluice.conf").read_text()
    lines = [l[1:] if l.startswith("#") and " = " in l and
             l[1:2].isalpha() else l for l in text.splitlines()]
    conf = tmp_path / "all.conf"
    conf.write_text("\n".join(lines) + "\n")
    r = check(conf)
    assert r.returncode == 0, r.stderr


def test_missing_file(tmp_path):
    path = tmp_path / "absent.conf"
    r = check(path)
    assert r.returncode != 0
    assert f"{path}: No such file or directory" in r.stderr


def test_directory(tmp_path):
    r = check(tmp_path)
    assert r.returncode != 0
    assert f"{tmp_path}: Is a directory" in r.stderr


def test_relative_path_is_reported_as_given():
    """The error names the file as it was passed, relative or not."""
    rel = os.path.relpath(HERE / "cases" / "unknown_key.conf", ROOT)
    r = check(rel)
    assert r.returncode != 0
    assert f"{rel}:3: unknown key 'max_recipient'" in r.stderr

"""The manual pages in man/: clean under `mandoc -T lint`, complete
against the code and docs/configuration.md, and installed by
`make install`.

- Every option in the getopt() strings of src/sluiced.c and
  src/sluicectl.c has an `.It Fl X` entry in its page.
- Every sluicectl command in ctl_cmds[] has an `.It Cm NOUN VERB` entry,
  and every `--long` argument it compares against is in the page.
- Every key named in a table of docs/configuration.md (a line starting
  with "| `key`", also inside a list item) has an `.It Ic key` entry in
  sluice.conf.5.
"""
import os
import re
import shutil
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MAN = os.path.join(ROOT, "man")
PAGES = ["sluiced.8", "sluicectl.8", "sluice.conf.5"]


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def getopt_letters(src):
    """The option letters of the getopt() call in src ("+f:p:" -> fp)."""
    m = re.search(r'getopt\s*\(\s*argc\s*,\s*argv\s*,\s*"([^"]*)"', src)
    assert m, "no getopt() call found"
    spec = m.group(1).lstrip("+-:")
    return [c for c in spec if c != ":"]


def tagged(page, macro):
    """The names of `.It MACRO a , b , c ...` entries of an mdoc page."""
    names = set()
    for m in re.finditer(r"^\.It %s (.*)$" % macro, page, re.M):
        for part in m.group(1).split(" , "):
            names.add(part.split()[0])
    return names


@pytest.mark.parametrize("name", PAGES)
def test_mandoc_lint(name):
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.fail("mandoc is not installed; run scripts/install-deps")
    r = subprocess.run([mandoc, "-T", "lint", "-W", "warning",
                        os.path.join(MAN, name)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", \
        r.stdout + r.stderr


@pytest.mark.parametrize("prog", ["sluiced", "sluicectl"])
def test_options_documented(prog):
    letters = getopt_letters(read("src", prog + ".c"))
    assert letters
    page = read("man", prog + ".8")
    for c in letters:
        assert re.search(r"^\.It Fl %s( |$)" % re.escape(c), page, re.M), \
            "%s -%s is not described in man/%s.8" % (prog, c, prog)
        assert re.search(r"^\.Sh SYNOPSIS$(?:(?!^\.Sh ).)*Fl [a-z]*%s"
                         % re.escape(c), page, re.M | re.S), \
            "%s -%s is not in the SYNOPSIS of man/%s.8" % (prog, c, prog)


def test_sluicectl_commands_documented():
    src = read("src", "sluicectl.c")
    table = re.search(r"ctl_cmds\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert table, "ctl_cmds[] not found"
    cmds = re.findall(r'\{\s*"(\w+)",\s*"(\w+)"', table.group(1))
    assert cmds
    page = read("man", "sluicectl.8")
    for noun, verb in cmds:
        assert re.search(r"^\.It Cm %s %s( |$)" % (noun, verb), page,
                         re.M), "sluicectl %s %s is not described" % (
                             noun, verb)
    for arg in set(re.findall(r'"--([a-z][a-z-]*)"', src)):
        assert "Fl \\-" + arg in page, "sluicectl --%s is not described" % arg


def config_keys():
    keys = []
    for line in read("docs", "configuration.md").splitlines():
        m = re.match(r"\s*\| `([a-z_0-9]+)`", line)
        if m and m.group(1) not in keys:
            keys.append(m.group(1))
    return keys


def test_config_keys_documented():
    keys = config_keys()
    assert len(keys) > 50, keys
    documented = tagged(read("man", "sluice.conf.5"), "Ic")
    missing = [k for k in keys if k not in documented]
    assert not missing, "not in man/sluice.conf.5: %s" % ", ".join(missing)


def test_install_man_pages(tmp_path):
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-s", "-C", ROOT, "install",
                        "DESTDIR=%s" % dest], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    mandir = dest / "usr/local/share/man"
    for name in PAGES:
        path = mandir / ("man" + name[-1]) / name
        assert path.read_bytes() == open(os.path.join(MAN, name),
                                         "rb").read()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644

"""End-to-end tests of sluiced: the real daemon, real clients.

SLUICE_BUILD (absolute) selects the build directory; default <repo>/build.
"""
import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Load tests/smtp/helpers under a name no other test directory uses.
if "sluice_smtp_helpers" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "sluice_smtp_helpers", os.path.join(HERE, "helpers", "__init__.py"),
        submodule_search_locations=[os.path.join(HERE, "helpers")])
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["sluice_smtp_helpers"] = _mod
    _spec.loader.exec_module(_mod)

from sluice_smtp_helpers.daemon import Sluiced  # noqa: E402


def build_dir():
    return os.environ.get("SLUICE_BUILD") or os.path.join(REPO, "build")


def pytest_report_header(config):
    return "sluiced: %s" % os.path.join(build_dir(), "sluiced")


@pytest.fixture(scope="session")
def sluice_build():
    b = build_dir()
    for prog in ("sluiced", "sluicectl"):
        p = os.path.join(b, prog)
        if not os.access(p, os.X_OK):
            pytest.fail("%s is missing: build first (make) or set "
                        "SLUICE_BUILD" % p, pytrace=False)
    return b


class _Reaper:
    """Daemons a test is done with: SIGTERMed at its teardown, waited for
    and checked (exit status 0, no sanitizer report, no process left)
    while the next tests run -- sluiced's parent notices a signal only
    every 200 ms, which would otherwise cost every test that much.  A
    failure is reported at the teardown of a later test (or of the
    session) and names the test whose daemon failed."""

    def __init__(self):
        self.pending = []           # (daemon, nodeid)

    def add(self, d, nodeid):
        d.begin_stop()
        self.pending.append((d, nodeid))

    def collect(self, block):
        errors, still = [], []
        for d, nodeid in self.pending:
            if not block and d.proc is not None and d.proc.poll() is None:
                still.append((d, nodeid))
                continue
            try:
                d.finish_stop()
            except AssertionError as e:
                errors.append("daemon of %s: %s" % (nodeid, e))
        self.pending = still
        return errors


@pytest.fixture(scope="session")
def _reaper():
    r = _Reaper()
    yield r
    errors = r.collect(block=True)
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def sluiced(sluice_build, tmp_path, request, _reaper):
    """Factory: sluiced(**config_overrides) writes a config, starts the
    daemon, waits until it listens and returns a Sluiced.  Every daemon
    is stopped at teardown; a crash, a non-zero exit status after
    SIGTERM or a sanitizer report fails the test (see _Reaper)."""
    daemons = []
    request.node._sluiced_daemons = daemons

    def factory(**overrides):
        d = Sluiced(sluice_build, tmp_path / ("d%d" % len(daemons)),
                    **overrides)
        daemons.append(d)
        d.start()
        return d

    yield factory
    errors = []
    for d in daemons:
        if d.proc is not None and d.proc.poll() is not None:
            # Already dead: check it here, with this test.
            try:
                d.finish_stop()
            except AssertionError as e:
                errors.append(str(e))
        else:
            _reaper.add(d, request.node.nodeid)
    errors += _reaper.collect(block=len(_reaper.pending) > 8)
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def daemon(sluiced):
    """A sluiced with the default configuration."""
    return sluiced()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for i, d in enumerate(getattr(item, "_sluiced_daemons", [])):
            text = d.log_text(all_runs=True)
            lines = text.splitlines()
            if len(lines) > 150:
                lines = ["... (%d lines before)" % (len(lines) - 150)] \
                    + lines[-150:]
            rep.sections.append(("sluiced log %d (%s)" % (i, rep.when),
                                 "\n".join(lines)))

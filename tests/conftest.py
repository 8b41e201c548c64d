"""Shared by every pytest suite.

sluiced started as root (as in CI) drops to the unprivileged "sluice"
user; it must still reach the spool, Maildirs and password files the tests
put under pytest's temporary directories, which pytest creates with mode
0700.  Opening every ancestor for traversal (not listing) keeps the tests
honest about privileges without weakening them anywhere else.

The helpers of tests/helpers are the package ``sluice_test_helpers``
(loaded here, under a name no test directory can shadow): every suite
imports them as ``from sluice_test_helpers.sluiced import Sluiced``.
The fixtures of the daemon suites (tests/smtp, tests/relay,
tests/security) built on sluice_test_helpers.sluiced are declared here:

  sluice_build      the build directory (SLUICE_BUILD, default <repo>/build),
                    failing the session if sluiced or sluicectl is missing
  sluiced_daemons   the test's Daemons: .start(cls=Sluiced, **overrides);
                    stopped and checked at teardown (see Daemons)

A failed test gets the logs of its daemons in its report.
"""
import importlib.util
import os
import stat
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

if "sluice_test_helpers" not in sys.modules:
    _dir = os.path.join(HERE, "helpers")
    _spec = importlib.util.spec_from_file_location(
        "sluice_test_helpers", os.path.join(_dir, "__init__.py"),
        submodule_search_locations=[_dir])
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["sluice_test_helpers"] = _mod
    _spec.loader.exec_module(_mod)

from sluice_test_helpers import sluiced as _sluiced  # noqa: E402


def _open_for_traversal(path):
    path = os.path.abspath(path)
    while path not in ("/", "/tmp"):
        st = os.stat(path)
        if not st.st_mode & stat.S_IXOTH:
            os.chmod(path, stat.S_IMODE(st.st_mode) | 0o711)
        path = os.path.dirname(path)


@pytest.fixture(autouse=True)
def _traversable_tmp(request):
    if "tmp_path" in request.fixturenames:
        _open_for_traversal(request.getfixturevalue("tmp_path"))
    yield


# -- the daemon suites

@pytest.fixture(scope="session")
def sluice_build():
    b = _sluiced.build_dir()
    for p in _sluiced.missing_programs(b):
        pytest.fail("%s is missing: build first (make) or set "
                    "SLUICE_BUILD" % p, pytrace=False)
    return b


@pytest.fixture(scope="session")
def _reaper():
    r = _sluiced.Reaper()
    yield r
    errors = r.collect(block=True)
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def sluiced_daemons(sluice_build, tmp_path, request, _reaper):
    daemons = _sluiced.Daemons(sluice_build, tmp_path, request.node.nodeid,
                               _reaper)
    request.node._sluiced_daemons = daemons.list
    yield daemons
    errors = daemons.stop_all()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        rep.sections += _sluiced.log_sections(
            getattr(item, "_sluiced_daemons", []), rep.when)

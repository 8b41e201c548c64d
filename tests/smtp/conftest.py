"""End-to-end tests of sluiced: the real daemon, real clients.

SLUICE_BUILD (absolute) selects the build directory; default <repo>/build.
The helpers are tests/helpers (sluice_test_helpers), the shared fixtures
sluice_build and sluiced_daemons are in tests/conftest.py.
"""
import os

import pytest

from sluice_test_helpers.sluiced import build_dir


def pytest_report_header(config):
    return "sluiced: %s" % os.path.join(build_dir(), "sluiced")


@pytest.fixture
def sluiced(sluiced_daemons):
    """Factory: sluiced(**config_overrides) writes a config, starts the
    daemon, waits until it listens and returns a Sluiced.  Every daemon
    is stopped at teardown; a crash, a non-zero exit status after
    SIGTERM or a sanitizer report fails the test (see Reaper)."""
    return sluiced_daemons.start


@pytest.fixture
def daemon(sluiced):
    """A sluiced with the default configuration."""
    return sluiced()

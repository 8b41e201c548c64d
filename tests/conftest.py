"""Shared by every pytest suite.

sluiced started as root (as in CI) drops to the unprivileged "sluice"
user; it must still reach the spool, Maildirs and password files the tests
put under pytest's temporary directories, which pytest creates with mode
0700.  Opening every ancestor for traversal (not listing) keeps the tests
honest about privileges without weakening them anywhere else.
"""
import os
import stat

import pytest


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

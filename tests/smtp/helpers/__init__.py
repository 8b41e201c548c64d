"""Helpers of the sluice end-to-end suite (tests/smtp).

conftest.py loads this package under the name ``sluice_smtp_helpers`` so
that it cannot clash with another test directory's ``helpers``.
"""

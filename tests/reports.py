"""Texts tests want shown after the run's summary (the load figures), so CI
output carries them without ``-s``; conftest.py prints them."""

import pytest

REPORTS = pytest.StashKey[list]()

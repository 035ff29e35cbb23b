import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def cli(repo_root) -> pathlib.Path:
    """The installed `flashvsr` executable next to this interpreter."""
    exe = pathlib.Path(sys.executable).parent / "flashvsr"
    assert exe.exists(), f"the CLI was not installed next to {sys.executable}"
    return exe

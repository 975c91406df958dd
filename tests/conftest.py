"""Homes built once per test session and shared: building one is the slow part of every test that needs data.

`demo` is what `make demo` runs (`warehouse demo`: generate, the daily job, an example access request), on 300
customers. Tests only read it; a test that changes a home works on its own copy (`demo_copy`), which costs a
file copy instead of a build.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from core.home import Home
from warehouse.cli import main


def cli(home: Home | Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`warehouse --home HOME ARGS` in this process."""
    root = home.root if isinstance(home, Home) else home
    return CliRunner().invoke(main, ["--home", str(root), *args], env=env)


def copy_home(home: Home, target: Path, *, skip: tuple[str, ...] = ("sample-inbox", "dbt")) -> Home:
    """A copy of a built home that a test may change (dbt's target folder is rebuilt where needed)."""
    shutil.copytree(home.root, target, ignore=shutil.ignore_patterns(*skip))
    return Home(target)


@dataclass(frozen=True)
class Demo:
    home: Home
    inbox: Path
    result: Result


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    root = tmp_path_factory.mktemp("demo")
    result = cli(root, "demo", "--customers", "300", "--seed", "7")
    assert (root / "analytics.duckdb").exists(), result.output
    return Demo(Home(root), root / "sample-inbox", result)


@pytest.fixture
def demo_copy(demo, tmp_path) -> Home:
    return copy_home(demo.home, tmp_path / "home")


@pytest.fixture(scope="session")
def overdue_home(tmp_path_factory) -> Home:
    """The hand-made inbox of tests/test_retention.py (records past their period, legal holds), run once."""
    from test_retention import build_overdue_home

    return build_overdue_home(tmp_path_factory.mktemp("overdue"))

"""Homes built once per test session and shared: building one is the slow part of every test that needs data.

`demo` is what `make demo` runs (`warehouse demo`: generate, the daily job, an example access request), on 300
customers. Tests only read it; a test that changes a home works on its own copy (`demo_copy`), which costs a
file copy instead of a build. Every test home starts with dbt's parse of the project made once for the session
(warehouse/dbt.py gives dbt the same vars in every home, so the parse is valid in all of them).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from core.home import Home
from warehouse.cli import main

PARSED: list[Path] = []  # dbt's partial parse of the project, made once (parse_once)


def seed_parse(root: Path) -> None:
    """Give a new home the session's parse of the project, so its first dbt call parses nothing again."""
    target = root / "dbt" / "target" / "partial_parse.msgpack"
    if PARSED and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PARSED[0], target)


@pytest.fixture(scope="session", autouse=True)
def parse_once(tmp_path_factory) -> None:
    from core.settings import Settings
    from warehouse.dbt import run_dbt

    settings = Settings.for_home(tmp_path_factory.mktemp("parse"))
    settings.home.create()
    if run_dbt(settings, "parse").success:
        PARSED.append(settings.home.dbt_dir / "target" / "partial_parse.msgpack")


def cli(home: Home | Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`warehouse --home HOME ARGS` in this process."""
    root = home.root if isinstance(home, Home) else home
    seed_parse(Path(root))
    return CliRunner().invoke(main, ["--home", str(root), *args], env=env)


def copy_home(home: Home, target: Path, *, skip: tuple[str, ...] = ("sample-inbox", "logs")) -> Home:
    """A copy of a built home that a test may change (with dbt's parse of the project; no logs)."""
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
def vault(tmp_path):
    """A plain DuckDB file standing in for the vault, for tests of the ingest's SQL alone."""
    from core.db import connect

    con = connect(tmp_path / "vault.duckdb")
    yield con
    con.close()


@pytest.fixture
def demo_copy(demo, tmp_path) -> Home:
    return copy_home(demo.home, tmp_path / "home")


@pytest.fixture(scope="session")
def overdue_home(tmp_path_factory) -> Home:
    """The hand-made inbox of tests/test_retention.py (records past their period, legal holds), run once."""
    from test_retention import build_overdue_home

    return build_overdue_home(tmp_path_factory.mktemp("overdue"))

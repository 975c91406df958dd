"""A run that outgrows the memory limit spills to the home's tmp folder and the warehouse says so."""

from __future__ import annotations

from core.db import connect
from core.settings import Limits
from core.spill import SpillWatch


def test_work_past_the_memory_limit_spills_and_the_watch_sees_it(tmp_path):
    spill = tmp_path / "tmp"
    con = connect(limits=Limits(threads=1, memory_limit="64MB"), temp_directory=spill)
    with SpillWatch(spill, interval=0.01) as watch:
        # ~160 MB of random strings to sort: more than the limit, so the sort goes through disk.
        rows = con.execute("""select count(*) from (select md5(random()::varchar) || md5(random()::varchar) as v
                              from range(2000000) order by v)""").fetchone()[0]
    con.close()
    assert rows == 2_000_000
    assert watch.peak_bytes > 64 * 2**20


def test_work_within_the_limit_reports_no_spill(tmp_path):
    spill = tmp_path / "tmp"
    con = connect(limits=Limits(memory_limit="1GB"), temp_directory=spill)
    with SpillWatch(spill, interval=0.01) as watch:
        con.execute("select sum(range) from range(1000000)").fetchone()
    con.close()
    assert watch.peak_bytes == 0


def test_the_watch_counts_the_connections_spill_folders_not_the_scratch_copies(tmp_path):
    (tmp_path / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"d" * 300)  # dbt's, in the folder itself
    (tmp_path / "spill-1-0badcafe").mkdir()
    (tmp_path / "spill-1-0badcafe" / "duckdb_temp_block-1.block").write_bytes(b"v" * 1000)  # a vault connection's
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "invoices_20261204.csv").write_bytes(b"s" * 5000)  # a UTF-8 copy of an export
    with SpillWatch(tmp_path, interval=0.01) as watch:
        pass
    assert watch.stop() == 1300

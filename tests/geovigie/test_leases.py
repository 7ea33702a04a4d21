"""Leases of the shared PostgreSQL: a live holder counts, a dead one (kill -9, or a reused pid) is reaped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from geovigie.leases import LeaseFolder, process_start_time

TAKE_AND_WAIT = ("import sys, time; from geovigie.leases import LeaseFolder; "
                 "LeaseFolder(sys.argv[1]).take(); print('held', flush=True); time.sleep(600)")


def test_a_lease_counts_until_released(tmp_path: Path) -> None:
    leases = LeaseFolder(tmp_path / "leases")
    assert leases.live() == []
    first, second = leases.take(), leases.take()
    assert {lease.path for lease in leases.live()} == {first.path, second.path}
    assert first.pid == os.getpid() and first.started == process_start_time(os.getpid())
    leases.release(first)
    assert [lease.path for lease in leases.live()] == [second.path]
    leases.release(second)
    leases.release(second)  # twice is fine
    assert leases.live() == []


def test_the_lease_of_a_process_killed_with_kill_9_is_reaped(tmp_path: Path) -> None:
    folder = tmp_path / "leases"
    holder = subprocess.Popen([sys.executable, "-c", TAKE_AND_WAIT, str(folder)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        live = LeaseFolder(folder).live()
        assert [lease.pid for lease in live] == [holder.pid] and "-c" in live[0].command
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    leases = LeaseFolder(folder)
    assert [lease.pid for lease in leases.reap()] == [holder.pid]
    assert leases.live() == [] and not list(folder.glob("*.lease"))


def test_a_reused_pid_does_not_keep_a_dead_holders_lease(tmp_path: Path) -> None:
    leases = LeaseFolder(tmp_path / "leases")
    lease = leases.take()
    record = json.loads(lease.path.read_text())
    record["started"] -= 3600  # the pid now runs another process, started an hour after the holder
    lease.path.write_text(json.dumps(record))
    assert leases.live() == [] and not lease.path.exists()


def test_the_operator_lease_holds_until_released_and_is_taken_once(tmp_path: Path) -> None:
    leases = LeaseFolder(tmp_path / "leases")
    operator = leases.take(operator=True, command="geovigie db start")
    assert leases.take(operator=True).path == operator.path
    assert [lease.operator for lease in leases.live()] == [True]
    leases.release(operator)
    assert leases.live() == []


def test_unreadable_lease_files_are_skipped(tmp_path: Path) -> None:
    leases = LeaseFolder(tmp_path / "leases")
    kept = leases.take()
    (tmp_path / "leases" / "junk.lease").write_text("{not json")
    assert [lease.path for lease in leases.live()] == [kept.path]

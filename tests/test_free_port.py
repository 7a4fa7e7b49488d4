"""The tests' free ports: fresh within a process, and disjoint between pytest-xdist workers."""

from __future__ import annotations

from tests.mosquitto import free_port, worker_share


def test_each_worker_hands_out_only_its_own_share_of_ports(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    handed: dict[int, set[int]] = {}
    for index in (0, 1):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{index}")
        assert worker_share() == (index, 2)
        handed[index] = {free_port() for _ in range(20)}
        assert len(handed[index]) == 20  # never the same port twice in one process
        assert {(port // 2) % 2 for port in handed[index]} == {index}
    assert not handed[0] & handed[1]


def test_one_process_takes_any_port(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert worker_share() == (0, 1)
    assert 0 < free_port() < 65536

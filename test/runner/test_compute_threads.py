"""What compute_threads does to the CPU threads PyTorch keeps for each calling thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from omp_teams import gone, openmp_threads, parallel_region
from runner import compute_threads


def test_a_released_team_exits_and_the_next_region_starts_another():
    before = openmp_threads()
    with ThreadPoolExecutor(max_workers=1) as pool:
        team = pool.submit(parallel_region).result() - before
        assert team, "a parallel region on a fresh thread starts its team"
        assert not gone(team, within_s=0.2), "a team outlives its region"
        pool.submit(compute_threads.release_team).result()
        assert gone(team)
        again = pool.submit(parallel_region).result() - before
        assert again and not gone(again, within_s=0.2)


def test_releasing_a_thread_without_a_team_does_nothing():
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(compute_threads.release_team).result()
        pool.submit(compute_threads.release_team).result()


def test_a_handler_lets_its_compute_threads_go_when_asked(load):
    """Once startup's passes are done, a runner serving in turn runs none on the compute thread."""
    handler = load("bge-small-en-v1.5")
    handler.time_pass(64, 256)  # the tokenizer's threads, started before anything is counted
    handler.release_compute_team()
    before = openmp_threads()
    handler.time_pass(64, 256)  # on the compute thread
    team = openmp_threads() - before
    assert team and not gone(team, within_s=0.2)
    handler.release_compute_team()
    assert gone(team)

"""The runner isolates checks: hangs become `timeout`, dead workers `crash`, raising checks `error`."""

from acceldoctor.runner.pool import WorkerPool
from acceldoctor.runner.worker import Task


def test_worker_is_reused_across_checks_until_it_dies():
    with WorkerPool() as pool:
        first = pool.run(Task("correctness.matmul", "cpu", "quick"), timeout_s=120)
        pid = pool._worker.process.pid
        second = pool.run(Task("correctness.matmul", "cpu", "quick", seed=1), timeout_s=120)
        assert pool._worker.process.pid == pid
    assert first["status"] == second["status"] == "pass"


def test_hanging_check_times_out_and_the_next_check_runs_in_a_fresh_worker():
    with WorkerPool() as pool:
        hung = pool.run(Task("correctness.matmul", "cpu", "quick", fault="hang-matmul"), timeout_s=3)
        assert hung["status"] == "timeout"
        assert "did not finish within 3 s" in hung["message"]
        after = pool.run(Task("correctness.matmul", "cpu", "quick"), timeout_s=120)
    assert after["status"] == "pass"


def test_crashing_op_reports_the_signal_and_the_run_goes_on():
    with WorkerPool() as pool:
        crashed = pool.run(Task("correctness.conv2d", "cpu", "quick", fault="crash-conv2d"), timeout_s=120)
        assert crashed["status"] == "crash"
        assert "SIGSEGV" in crashed["message"]
        after = pool.run(Task("correctness.matmul", "cpu", "quick"), timeout_s=120)
    assert after["status"] == "pass"


def test_a_check_that_raises_is_an_error_with_the_reason_and_the_worker_survives():
    with WorkerPool() as pool:
        broken = pool.run(Task("correctness.matmul", "cpu", "quick", params={"shapes": "no-such-set"}), 120)
        pid = pool._worker.process.pid
        after = pool.run(Task("correctness.matmul", "cpu", "quick"), timeout_s=120)
        assert pool._worker.process.pid == pid
    assert broken["status"] == "error"
    assert "KeyError" in broken["message"] and "no-such-set" in broken["message"]
    assert after["status"] == "pass"


def test_long_checks_report_progress_to_the_parent_while_running():
    seen = []
    with WorkerPool() as pool:
        outcome = pool.run(Task("environment.memory_pattern", "cpu", "quick"), timeout_s=120,
                           on_progress=lambda done, total, what: seen.append((done, total, what)))
    assert outcome["status"] == "pass"
    assert seen, "no progress arrived"
    assert all(0 <= done <= total for done, total, _ in seen)
    assert any("address-in-address" in what or "walking" in what or "random" in what for *_, what in seen)


def test_a_device_that_stops_responding_fails_the_check_and_retires_the_worker():
    # The meta device accepts ops but can never hand data back: to the probe it looks like a dead device.
    from acceldoctor.runner.worker import run_task

    outcome = run_task(Task("correctness.matmul", "meta", "quick"))
    assert outcome["status"] == "fail" and outcome["retire"]
    assert "the device stopped responding during the check" in outcome["message"]


def test_a_device_that_cannot_be_initialised_fails_and_the_next_device_still_runs():
    with WorkerPool() as pool:
        dead = pool.run(Task("correctness.matmul", "meta", "quick"), timeout_s=120)
        after = pool.run(Task("correctness.matmul", "cpu", "quick"), timeout_s=120)
    assert dead["status"] == "fail" and "could not be initialised" in dead["message"]
    assert after["status"] == "pass"

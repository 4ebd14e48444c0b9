"""SQLite's writers queue in the server first come, first served (its own busy handler retries by sleeping, and
under many uploaders some waited past the busy timeout while later ones went first)."""

import threading
import time

from acceldoctor.portal.db.engine import WriteQueue


def test_writers_are_served_in_the_order_they_came():
    queue = WriteQueue()
    assert queue.acquire(timeout=1)
    served, threads = [], []
    for index in range(8):
        def write(index=index):
            assert queue.acquire(timeout=10)
            served.append(index)
            queue.release()

        threads.append(threading.Thread(target=write))
        threads[-1].start()
        time.sleep(0.02)  # each is in line before the next comes
    queue.release()
    for thread in threads:
        thread.join(10)
    assert served == list(range(8))


def test_a_writer_that_gives_up_leaves_the_line_without_blocking_the_next():
    queue = WriteQueue()
    assert queue.acquire(timeout=1)
    assert queue.acquire(timeout=0.05) is False  # waited its time, gave up
    got = []
    waiter = threading.Thread(target=lambda: got.append(queue.acquire(timeout=5)))
    waiter.start()
    time.sleep(0.05)
    queue.release()
    waiter.join(5)
    assert got == [True]
    queue.release()
    assert queue.acquire(timeout=0.05)  # free again

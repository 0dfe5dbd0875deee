# The client side of the benchmarks that drive many short sessions: a fixed number of
# threads pulling work items from one counter, so every row loads sppd the same way.
import threading
import time

THREADS = 8  # client threads per row


def run_threads(count, work, threads=THREADS):
    """Runs work(i) for i in range(count) on `threads` threads; returns the elapsed seconds.
    The first exception ends the row."""
    errors, lock, next_index = [], threading.Lock(), [0]

    def loop():
        while not errors:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= count:
                return
            try:
                work(i)
            except Exception as e:  # reported once, after the threads are done
                errors.append(e)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    started = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started

#!/usr/bin/env python3
"""An ordinary threaded Python program that uses every primitive of `threading` and `queue`.

Run it natively or greenified (`scripts/greenify python3 cdylib-tests/py/threading_all.py`):
it prints one deterministic line per check on stdout and exits 0; any broken invariant
prints `FAIL ...` on stderr and exits 1.

Timed checks print a time class, measured with time.monotonic() against the expected E ms:
`ok` if E - 1 <= elapsed <= E + 250 ms, `early` if less, `late` if more (the same classes as
the C `timeouts` demo, with a more generous upper bound for an interpreter).

Several threads really contend: 20 workers share a Queue, producers and consumers share a
Condition, lock holders sleep while holding the lock so that waiters must block.
"""

import queue
import sys
import threading
import time

LATE_MS = 250
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL {what}", file=sys.stderr, flush=True)


def time_class(start, expected_ms):
    elapsed = (time.monotonic() - start) * 1000.0
    if elapsed < expected_ms - 1:
        return "early"
    if elapsed > expected_ms + LATE_MS:
        return "late"
    return "ok"


def report(line):
    print(line, flush=True)


def start_all(threads):
    for t in threads:
        t.start()


def join_all(threads):
    for t in threads:
        t.join()


def after(ms, fn):
    """Runs fn() on a helper thread after ms milliseconds; returns the started thread."""

    def run():
        time.sleep(ms / 1000.0)
        fn()

    t = threading.Thread(target=run, name=f"after-{ms}ms")
    t.start()
    return t


# --------------------------------------------------------------------------------------------
# Lock
# --------------------------------------------------------------------------------------------


def lock_basic():
    lock = threading.Lock()
    first = lock.acquire()
    locked = lock.locked()
    again = lock.acquire(blocking=False)
    lock.release()
    report(
        f"lock_basic: acquire={first} locked={locked} nonblocking_again={again} "
        f"locked_after_release={lock.locked()}"
    )


def lock_contended():
    """20 threads x 50 read-sleep-write increments under one Lock: no update is lost."""
    lock = threading.Lock()
    state = {"count": 0, "inside": 0, "max_inside": 0}

    def worker():
        for _ in range(50):
            with lock:
                state["inside"] += 1
                state["max_inside"] = max(state["max_inside"], state["inside"])
                value = state["count"]
                time.sleep(0.0001)  # park while holding the lock
                state["count"] = value + 1
                state["inside"] -= 1

    threads = [threading.Thread(target=worker) for _ in range(20)]
    start_all(threads)
    join_all(threads)
    check(state["count"] == 1000, f"lock_contended count {state['count']}")
    check(state["max_inside"] == 1, f"lock_contended max_inside {state['max_inside']}")
    report(f"lock_contended: threads=20 count={state['count']} max_inside={state['max_inside']}")


def lock_acquire_timeout():
    lock = threading.Lock()
    held = threading.Event()
    release = threading.Event()

    def holder():
        with lock:
            held.set()
            release.wait()

    t = threading.Thread(target=holder)
    t.start()
    held.wait()
    start = time.monotonic()
    got = lock.acquire(timeout=0.2)
    report(f"lock_acquire_timeout_200: ret={got} time={time_class(start, 200)}")
    if got:
        lock.release()
    release.set()
    t.join()

    # The holder lets go after 100 ms: a waiter with a long timeout gets the lock then.
    lock.acquire()
    start = time.monotonic()
    helper = after(100, lock.release)
    got = lock.acquire(timeout=5)
    report(f"lock_acquire_released_100: ret={got} time={time_class(start, 100)}")
    if got:
        lock.release()
    helper.join()


# --------------------------------------------------------------------------------------------
# RLock
# --------------------------------------------------------------------------------------------


def rlock_reentrant():
    rlock = threading.RLock()
    depth_reached = threading.Event()
    go = threading.Event()
    results = {}

    def owner():
        with rlock:
            with rlock:
                with rlock:
                    depth_reached.set()
                    go.wait()

    def contender():
        depth_reached.wait()
        results["try"] = rlock.acquire(blocking=False)
        start = time.monotonic()
        results["timed"] = rlock.acquire(timeout=0.15)
        results["timed_class"] = time_class(start, 150)
        go.set()
        results["blocking"] = rlock.acquire()
        rlock.release()

    a = threading.Thread(target=owner)
    b = threading.Thread(target=contender)
    start_all([a, b])
    join_all([a, b])
    report(
        f"rlock_reentrant: depth=3 other_try={results['try']} "
        f"other_timed_150={results['timed']} time={results['timed_class']} "
        f"other_after_release={results['blocking']}"
    )

    # Contention on a recursive lock: each increment re-enters it twice and sleeps inside.
    state = {"count": 0}

    def bump(depth):
        with rlock:
            if depth == 0:
                value = state["count"]
                time.sleep(0.0002)
                state["count"] = value + 1
            else:
                bump(depth - 1)

    threads = [threading.Thread(target=lambda: [bump(2) for _ in range(30)]) for _ in range(10)]
    start_all(threads)
    join_all(threads)
    check(state["count"] == 300, f"rlock count {state['count']}")
    report(f"rlock_contended: threads=10 count={state['count']}")

    try:
        rlock.release()
        report("rlock_release_unowned: no error")
    except RuntimeError:
        report("rlock_release_unowned: RuntimeError")


# --------------------------------------------------------------------------------------------
# Condition
# --------------------------------------------------------------------------------------------


def condition_prodcons():
    """4 producers x 500 items through a bounded buffer of 8, 4 consumers, one Condition."""
    cond = threading.Condition()
    buf = []
    capacity = 8
    producers, consumers, items = 4, 4, 500
    state = {"done_producers": 0, "consumed": 0, "sum": 0, "max_len": 0}

    def producer(p):
        for i in range(items):
            with cond:
                while len(buf) >= capacity:
                    cond.wait()
                buf.append(p * items + i)
                state["max_len"] = max(state["max_len"], len(buf))
                cond.notify_all()
            if i % 100 == 99:
                time.sleep(0.001)
        with cond:
            state["done_producers"] += 1
            cond.notify_all()

    def consumer():
        while True:
            with cond:
                while not buf and state["done_producers"] < producers:
                    cond.wait()
                if not buf:
                    return
                value = buf.pop(0)
                state["consumed"] += 1
                state["sum"] += value
                cond.notify_all()

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(producers)]
    threads += [threading.Thread(target=consumer) for _ in range(consumers)]
    start_all(threads)
    join_all(threads)
    n = producers * items
    expected = n * (n - 1) // 2
    check(state["sum"] == expected, f"condition sum {state['sum']} != {expected}")
    check(state["max_len"] <= capacity, f"condition buffer grew to {state['max_len']}")
    report(
        f"condition_prodcons: producers={producers} consumers={consumers} "
        f"consumed={state['consumed']} sum_ok={state['sum'] == expected} "
        f"within_capacity={state['max_len'] <= capacity}"
    )


def condition_timeouts():
    cond = threading.Condition()
    with cond:
        start = time.monotonic()
        got = cond.wait(timeout=0.2)
        report(f"condition_wait_200: ret={got} time={time_class(start, 200)}")

    with cond:
        start = time.monotonic()
        got = cond.wait_for(lambda: False, timeout=0.15)
        report(f"condition_wait_for_false_150: ret={got} time={time_class(start, 150)}")

    flag = {"set": False}

    def set_flag():
        with cond:
            flag["set"] = True
            cond.notify()

    with cond:
        start = time.monotonic()
        helper = after(100, set_flag)
        got = cond.wait_for(lambda: flag["set"], timeout=5)
        report(f"condition_wait_for_true_100: ret={got} time={time_class(start, 100)}")
    helper.join()


def condition_notify_counts():
    """notify(3) wakes three of ten waiters, notify_all the other seven."""
    cond = threading.Condition()
    state = {"waiting": 0, "woken": 0, "tickets": 0}

    def waiter():
        with cond:
            state["waiting"] += 1
            cond.notify_all()  # tell main one more is waiting
            while state["tickets"] == 0:
                cond.wait()
            state["tickets"] -= 1
            state["woken"] += 1
            cond.notify_all()

    threads = [threading.Thread(target=waiter) for _ in range(10)]
    start_all(threads)
    with cond:
        cond.wait_for(lambda: state["waiting"] == 10)
        state["tickets"] = 3
        cond.notify(3)
        cond.wait_for(lambda: state["woken"] == 3)
        first = state["woken"]
        state["tickets"] = 7
        cond.notify_all()
    join_all(threads)
    report(f"condition_notify: waiters=10 after_notify_3={first} after_notify_all={state['woken']}")


# --------------------------------------------------------------------------------------------
# Event
# --------------------------------------------------------------------------------------------


def event_checks():
    ev = threading.Event()
    start = time.monotonic()
    got = ev.wait(timeout=0.2)
    report(f"event_wait_200: ret={got} time={time_class(start, 200)}")

    start = time.monotonic()
    helper = after(100, ev.set)
    got = ev.wait(timeout=5)
    report(f"event_set_100: ret={got} time={time_class(start, 100)}")
    helper.join()

    ev.clear()
    gate = threading.Event()
    woke = []
    woke_lock = threading.Lock()

    def waiter(i):
        if gate.wait(timeout=10):
            with woke_lock:
                woke.append(i)

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(15)]
    start_all(threads)
    time.sleep(0.05)
    gate.set()
    join_all(threads)
    report(f"event_broadcast: waiters=15 woke={len(woke)} is_set={gate.is_set()} cleared={ev.is_set()}")


# --------------------------------------------------------------------------------------------
# Semaphore, BoundedSemaphore
# --------------------------------------------------------------------------------------------


def semaphore_checks():
    sem = threading.Semaphore(3)
    state = {"in_use": 0, "max_in_use": 0, "uses": 0}
    guard = threading.Lock()

    def user():
        for _ in range(5):
            with sem:
                with guard:
                    state["in_use"] += 1
                    state["uses"] += 1
                    state["max_in_use"] = max(state["max_in_use"], state["in_use"])
                time.sleep(0.005)
                with guard:
                    state["in_use"] -= 1

    threads = [threading.Thread(target=user) for _ in range(12)]
    start_all(threads)
    join_all(threads)
    check(state["max_in_use"] <= 3, f"semaphore max_in_use {state['max_in_use']}")
    report(f"semaphore: value=3 threads=12 uses={state['uses']} max_in_use={state['max_in_use']}")

    empty = threading.Semaphore(0)
    report(f"semaphore_nonblocking_empty: ret={empty.acquire(blocking=False)}")
    start = time.monotonic()
    got = empty.acquire(timeout=0.15)
    report(f"semaphore_timeout_150: ret={got} time={time_class(start, 150)}")
    start = time.monotonic()
    helper = after(100, empty.release)
    got = empty.acquire(timeout=5)
    report(f"semaphore_release_100: ret={got} time={time_class(start, 100)}")
    helper.join()

    bounded = threading.BoundedSemaphore(2)
    bounded.acquire()
    bounded.acquire()
    third = bounded.acquire(blocking=False)
    bounded.release()
    bounded.release()
    try:
        bounded.release()
        over = "no error"
    except ValueError:
        over = "ValueError"
    report(f"bounded_semaphore: value=2 third_acquire={third} over_release={over}")


# --------------------------------------------------------------------------------------------
# queue.Queue
# --------------------------------------------------------------------------------------------


def queue_workers():
    """20 workers take 1000 tasks from one Queue; results come back through another."""
    tasks = queue.Queue(maxsize=50)
    results = queue.Queue()
    workers = 20
    n = 1000

    def worker():
        while True:
            item = tasks.get()
            if item is None:
                tasks.task_done()
                return
            if item % 25 == 0:
                time.sleep(0.001)
            results.put((item, item * item))
            tasks.task_done()

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(workers)]
    start_all(threads)
    for i in range(n):
        tasks.put(i)  # blocks while 50 are queued
    tasks.join()
    for _ in range(workers):
        tasks.put(None)
    join_all(threads)
    got = {}
    while True:
        try:
            item, square = results.get_nowait()
        except queue.Empty:
            break
        got[item] = square
    ok = len(got) == n and all(got[i] == i * i for i in range(n))
    check(ok, "queue results")
    report(f"queue_workers: workers={workers} tasks={n} results={len(got)} all_correct={ok}")

    empty = queue.Queue()
    start = time.monotonic()
    try:
        empty.get(timeout=0.15)
        what = "item"
    except queue.Empty:
        what = "Empty"
    report(f"queue_get_timeout_150: raised={what} time={time_class(start, 150)}")

    full = queue.Queue(maxsize=1)
    full.put(1)
    start = time.monotonic()
    try:
        full.put(2, timeout=0.15)
        what = "put"
    except queue.Full:
        what = "Full"
    report(f"queue_put_timeout_150: raised={what} time={time_class(start, 150)}")

    start = time.monotonic()
    helper = after(100, lambda: empty.put("late item"))
    item = empty.get(timeout=5)
    report(f"queue_get_100: item={item!r} time={time_class(start, 100)}")
    helper.join()


# --------------------------------------------------------------------------------------------
# Barrier
# --------------------------------------------------------------------------------------------


def barrier_checks():
    parties, rounds = 8, 20
    barrier = threading.Barrier(parties)
    slots = [None] * parties
    state = {"zero_index": 0, "bad": 0}
    guard = threading.Lock()

    def party(i):
        for r in range(rounds):
            slots[i] = r * 100 + i
            if (i + r) % 3 == 0:
                time.sleep(0.001)
            index = barrier.wait()
            if any(slots[j] != r * 100 + j for j in range(parties)):
                with guard:
                    state["bad"] += 1
            with guard:
                if index == 0:
                    state["zero_index"] += 1
            barrier.wait()

    threads = [threading.Thread(target=party, args=(i,)) for i in range(parties)]
    start_all(threads)
    join_all(threads)
    check(state["bad"] == 0, f"barrier saw {state['bad']} inconsistent rounds")
    report(
        f"barrier: parties={parties} rounds={rounds} index_zero={state['zero_index']} "
        f"inconsistent={state['bad']}"
    )

    lonely = threading.Barrier(2)
    start = time.monotonic()
    try:
        lonely.wait(timeout=0.15)
        what = "passed"
    except threading.BrokenBarrierError:
        what = "BrokenBarrierError"
    report(f"barrier_timeout_150: raised={what} time={time_class(start, 150)} broken={lonely.broken}")


# --------------------------------------------------------------------------------------------
# Thread.join, sleep, identity, thread-local data
# --------------------------------------------------------------------------------------------


def join_checks():
    t = threading.Thread(target=time.sleep, args=(0.5,), name="sleeper")
    start = time.monotonic()
    t.start()
    t.join(timeout=0.15)
    report(f"join_timeout_150: alive={t.is_alive()} time={time_class(start, 150)}")
    t.join()
    report(f"join_rest_500: alive={t.is_alive()} time={time_class(start, 500)}")

    start = time.monotonic()
    sleepers = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(50)]
    start_all(sleepers)
    join_all(sleepers)
    report(f"sleep_50_threads_200: time={time_class(start, 200)}")

    start = time.monotonic()
    time.sleep(0.1)
    report(f"sleep_100: time={time_class(start, 100)}")


def identity_checks():
    idents = []
    names = []
    local = threading.local()
    own = []
    guard = threading.Lock()
    barrier = threading.Barrier(20)

    def who(i):
        local.value = i
        barrier.wait()  # all 20 alive at once: idents must be distinct
        time.sleep(0.001 * (i % 4))
        with guard:
            idents.append(threading.get_ident())
            names.append(threading.current_thread().name)
            if local.value == i:
                own.append(i)

    threads = [threading.Thread(target=who, args=(i,), name=f"t{i:02d}") for i in range(20)]
    start_all(threads)
    join_all(threads)
    report(
        f"identity: threads=20 distinct_idents={len(set(idents))} "
        f"names_ok={sorted(names) == [f't{i:02d}' for i in range(20)]} "
        f"local_own_values={len(own)} main_is_main={threading.current_thread() is threading.main_thread()}"
    )


def daemon_and_count():
    stop = threading.Event()
    d = threading.Thread(target=stop.wait, daemon=True)
    d.start()
    alive = threading.active_count()
    stop.set()
    d.join()
    report(f"active_count: with_daemon={alive} after_join={threading.active_count()}")


def main():
    lock_basic()
    lock_contended()
    lock_acquire_timeout()
    rlock_reentrant()
    condition_prodcons()
    condition_timeouts()
    condition_notify_counts()
    event_checks()
    semaphore_checks()
    queue_workers()
    barrier_checks()
    join_checks()
    identity_checks()
    daemon_and_count()
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    report("all checks done")
    return 0


if __name__ == "__main__":
    sys.exit(main())

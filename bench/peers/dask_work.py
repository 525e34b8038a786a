"""W1 and W2 in Dask (Debian's python3-dask / python3-distributed).

usage: dask_work.py w1 N threaded|distributed   -> prints seconds
       dask_work.py w2 N                        -> prints "first_chain_s total_s" (threaded)
"""
import sys
import time

import dask
from dask import delayed


def inc(x):
    return x + 1


def total(xs):
    return sum(xs)


def w1(n, mode):
    t0 = time.time()
    parts = [delayed(inc)(i) for i in range(n)]
    s = delayed(total)(parts)
    if mode == "distributed":
        from dask.distributed import Client, LocalCluster
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            r = s.compute()
    else:
        r = s.compute(scheduler="threads", num_workers=2)
    assert r == n * (n + 1) // 2, r
    return time.time() - t0


def w2(n):
    done = []

    def stage(x, name):
        time.sleep(0.001)
        done.append((name, time.time()))
        return x

    t0 = time.time()
    a = [delayed(stage)(i, "a") for i in range(n)]
    b = [delayed(stage)(x, "b") for x in a]
    c = [delayed(stage)(x, "c") for x in b]
    r = delayed(total)(c).compute(scheduler="threads", num_workers=2)
    t1 = time.time()
    assert r == n * (n - 1) // 2
    first = min(t for name, t in done if name == "c") - t0
    return first, t1 - t0


if __name__ == "__main__":
    kind, n = sys.argv[1], int(sys.argv[2])
    if kind == "w1":
        print("%.3f" % w1(n, sys.argv[3]))
    else:
        print("%.3f %.3f" % w2(n))

"""jobvisor's benchmark suite (docs/bench.md): ``python -m bench [--quick] [--json FILE]``.

Five sections, each measured against a baseline taken in the same run on the same
machine, never against a fixed target:

* ``reconnect``  -- kill -9 the supervisor with N live workers, restart it, time every
  worker's return (``reconnect.py``);
* ``throughput`` -- messages/s absorbed from N flooding connections, against a
  decode-only reader (``throughput.py``, ``ceiling.py``);
* ``overhead``   -- spawn->completed of a trivial C worker, against spawning the same
  binary bare (``overhead.py``, ``trivial_worker.c``);
* ``store``      -- write transactions/s and bytes written with N heartbeating jobs
  (``store.py``);
* ``rss``        -- supervisor RSS per connected idle job (``rss.py``).

The supervisor under test is always a real ``jobvisor serve`` child process
(``harness.py``). Thousands of workers are simulated by one load generator process
(``loadgen.py``) that drives one ``jobvisor_worker.Session`` per job -- the worker
library's own sans-IO protocol code -- from a single selectors loop. docs/bench.md
explains every figure and its caveats.
"""

"""A test worker driven by its job data: ``{"actions": [[verb, *args], ...]}``.

Verbs: progress PCT MSG | log LEVEL MSG | logs COUNT LEVEL MSG (COUNT lines "MSG i") | sleep S | touch PATH (appends 'pid attempt time') | wait_file PATH |
return VALUE | return_nested DEPTH (DEPTH lists inside each other) | raise MSG | exit CODE (no outcome) | hang (heartbeats go on) |
stop (SIGSTOP itself: silent, heartbeat thread included) |
complete_then_kill_supervisor VALUE (complete; once acked, SIGKILL the supervisor, exit 0) |
complete_then_touch VALUE PATH (complete; once acked, create PATH, exit 0).
spew MEGABYTES (print that much to stdout) | ledger PATH (append "job pid attempt") |
on_attempt N VERB ARGS... (run the action only on attempt N) |
fork_child PATH (start a child that ignores SIGTERM, in our process group; write its PID to PATH).
Without a final verb the job completes with {"ok": true}.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobvisor_worker import Job, run_job


def main(job: Job) -> object:
    for action in (job.data or {}).get("actions", []):
        verb, *args = action
        if verb == "on_attempt":
            if job.attempt != args[0]:
                continue
            verb, *args = args[1:]
        if verb == "progress":
            job.progress(args[0], args[1] if len(args) > 1 else None)
        elif verb == "log":
            job.log(args[0], args[1])
        elif verb == "logs":
            for i in range(args[0]):
                job.log(args[1], f"{args[2]} {i}")
        elif verb == "sleep":
            time.sleep(args[0])
        elif verb == "touch":
            with open(args[0], "a") as stamp:
                stamp.write(f"{os.getpid()} {job.attempt} {time.time()}\n")
        elif verb == "wait_file":
            deadline = time.time() + 60
            while not os.path.exists(args[0]) and time.time() < deadline:
                time.sleep(0.01)
        elif verb == "spew":
            line = "x" * 1023 + "\n"
            for _ in range(args[0] * 1024):
                sys.stdout.write(line)
            sys.stdout.flush()
        elif verb == "ledger":
            with open(args[0], "a") as ledger:
                ledger.write(f"{job.id} {os.getpid()} {job.attempt}\n")
        elif verb == "fork_child":
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    "time.sleep(600)",
                ]
            )
            Path(args[0] + ".tmp").write_text(str(child.pid))
            os.rename(args[0] + ".tmp", args[0])
        elif verb == "return":
            return args[0]
        elif verb == "return_nested":
            value: object = 0
            for _ in range(args[0]):
                value = [value]
            return value
        elif verb == "raise":
            raise RuntimeError(args[0])
        elif verb == "exit":
            sys.stdout.flush()
            os._exit(args[0])
        elif verb == "hang":
            while True:
                time.sleep(1)
        elif verb == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        elif verb == "complete_then_kill_supervisor":
            job.complete(args[0])  # returns only after the ack
            os.kill(os.getppid(), signal.SIGKILL)  # the supervisor spawned us
            os._exit(0)
        elif verb == "complete_then_touch":
            job.complete(args[0])  # returns only after the ack
            Path(args[1]).touch()
            os._exit(0)
    return {"ok": True}


run_job(main)

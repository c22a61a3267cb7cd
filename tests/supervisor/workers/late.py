"""Waits for the file named by LATE_GATE (with {job} replaced by its job id) before it
connects, so a test can talk to the job's socket first; then runs scripted.py."""

import os
import runpy
import time
from pathlib import Path

gate = os.environ["LATE_GATE"].replace("{job}", os.environ["JOBVISOR_JOB_ID"])
deadline = time.time() + 60
while not os.path.exists(gate) and time.time() < deadline:
    time.sleep(0.01)
runpy.run_path(str(Path(__file__).with_name("scripted.py")), run_name="__main__")

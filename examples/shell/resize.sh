#!/usr/bin/env bash
# A complete jobvisor worker in bash (docs/worker-shell.md): "resizes" the images of its
# payload, reporting progress and logs, and stops cleanly when cancelled.
#
#   [jobs.resize-sh]
#   command = "bash"
#   args = ["shell/resize.sh"]
#
#   jobvisor submit resize-sh --data '{"images": ["a.png", "b.png"], "size": "64x64"}'
#
# Optional payload fields, also used by the tests: "delay" (seconds per image),
# "ready_file" (our PID appended once connected), "wait_file" (wait for it before finishing),
# "fail" (report this failure), "exit" (exit with this status, reporting nothing).
set -euo pipefail

# The supervisor exports JOBVISOR_PYTHON, a Python that has jobvisor_worker.
# shellcheck source=/dev/null
source "$("${JOBVISOR_PYTHON:-python3}" -m jobvisor_worker.shell --path)"

job_init

# Cancellation arrives as SIGTERM: clean up, then exit (the supervisor records "cancelled").
trap 'job_warn "cancelled: removing partial output"; exit 143' TERM

ready_file=$(job_data_get ready_file "")
if [[ -n $ready_file ]]; then
    echo "$$" >>"$ready_file" # one line per run: a test counts them
fi

count=$(job_data_count images)
size=$(job_data_get size "128x128")
delay=$(job_data_get delay 0)
job_info "resizing $count image(s) to $size (job $JOB_ID, attempt $JOB_ATTEMPT)"

for ((i = 0; i < count; i++)); do
    image=$(job_data_get "images.$i")
    sleep "$delay" &
    wait $! # in the background so that the TERM trap runs at once, not after the sleep
    job_progress $((100 * (i + 1) / count)) "resized $image"
    job_debug "wrote ${image%.*}-$size.${image##*.}"
done

wait_file=$(job_data_get wait_file "")
while [[ -n $wait_file && ! -e $wait_file ]]; do
    sleep 0.05 &
    wait $!
done

failure=$(job_data_get fail "")
if [[ -n $failure ]]; then
    job_error "giving up: $failure"
    job_fail "$failure"
    exit 1
fi

status=$(job_data_get exit 0)
if ((status != 0)); then
    job_warn "exiting with status $status without an outcome"
    exit "$status"
fi

job_complete "{\"resized\": $count, \"size\": \"$size\"}"

#!/bin/sh
# A plain job (docs/worker-plain.md): a program that knows nothing of jobvisor, run as
# cron or supervisord would run it. Its stdout and stderr land in the job's log; exit 0
# completes the job, and the last stdout line, being JSON, is the result. A non-zero
# exit fails it with the code and the end of stderr, and is retried like any job.
#
# Counts the lines of the Python files in the folder given as its argument.
set -eu
folder=${1:-.}
[ -d "$folder" ] || { echo "no folder $folder" >&2; exit 2; }
files=0
lines=0
for file in "$folder"/*.py; do
    [ -e "$file" ] || continue
    files=$((files + 1))
    lines=$((lines + $(wc -l < "$file")))
    echo "counted $file"
done
printf '{"folder": "%s", "files": %d, "lines": %d}\n' "$folder" "$files" "$lines"

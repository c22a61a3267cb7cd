# jobvisor-job.sh -- the jobvisor worker library for bash (docs/worker-shell.md).
#
#   source "$(jobvisor shell-lib)"   # or: python3 -m jobvisor_worker.shell --path
#   job_init
#   job_progress 50 "half way"
#   job_info "resized $(job_data_get images.0)"
#   job_complete '{"done": 2}'
#
# job_init starts the helper `python -m jobvisor_worker.shell` as a coproc; it holds the
# job's one connection to the supervisor (handshake, heartbeats, reconnection, replay)
# and answers one reply line per request line (the line protocol of docs/worker-shell.md).
# The coproc's pipes are duplicated onto descriptors of our own because bash closes a
# coproc's descriptors in subshells, and `find ... | while read f; do job_progress ...`
# runs its loop in one. Calls from two processes at the same time (a background job and
# the main script) are not supported: their replies could cross.
#
# Functions return 0 on success; on a bad call they print "FUNCTION: why" to stderr and
# return 1 (2 for a usage error). If the helper is gone (the supervisor refused the job,
# or could not be reached for the whole give-up window) the next call ends the script
# with the helper's exit status (77, 75): the job is not ours any more.
#
# Names starting with job__ or JOB__ are private.

# Where the helper's Python is: the supervisor exports its own interpreter.
JOB__PYTHON_DEFAULT=python3

job_init() {
    if [[ -n ${JOB__TO-} ]]; then
        printf 'job_init: already called in this script\n' >&2
        return 1
    fi
    local python=${JOBVISOR_PYTHON:-$JOB__PYTHON_DEFAULT}
    local cancel_signal=${JOB_CANCEL_SIGNAL:-TERM}
    local script_pid=$BASHPID
    coproc JOB__HELPER {
        exec "$python" -m jobvisor_worker.shell --script-pid "$script_pid" --signal "$cancel_signal"
    }
    # Saved: bash unsets JOB__HELPER_PID and the coproc's descriptors when it exits.
    JOB__PID=$JOB__HELPER_PID
    exec {JOB__TO}>&"${JOB__HELPER[1]}" {JOB__FROM}<&"${JOB__HELPER[0]}"
    local line
    if ! IFS= read -r line <&"$JOB__FROM" || [[ $line != ready$'\t'* ]]; then
        job__helper_gone job_init "$python -m jobvisor_worker.shell did not start the job \
(see the line above; JOBVISOR_PYTHON names the Python that has jobvisor_worker)"
    fi
    IFS=$'\t' read -r _ JOB_ID JOB_NAME JOB_ATTEMPT <<<"$line"
    printf -v JOB_ID '%b' "$JOB_ID"
    printf -v JOB_NAME '%b' "$JOB_NAME"
    # Reports a non-zero exit status as the job's failure before the script is gone.
    trap 'job_finish $?' EXIT
}

job_progress() {
    if (($# < 1 || $# > 2)) || [[ $1 == *[[:space:]]* || -z $1 ]]; then
        printf 'job_progress: usage: job_progress PERCENT [MESSAGE] (PERCENT from 0 to 100)\n' >&2
        return 2
    fi
    if (($# == 2)); then
        job__escape "$2"
        job__call job_progress "progress $1 $JOB__ESCAPED"
    else
        job__call job_progress "progress $1"
    fi
}

job_debug() { job__log debug "$*"; }
job_info() { job__log info "$*"; }
job_warn() { job__log warn "$*"; }
job_error() { job__log error "$*"; }

# job_data_get KEY [DEFAULT]: print the payload's value at KEY ("a.b.0.c"; "" = all of it):
# a string as its text, anything else as compact JSON. Without DEFAULT a missing key is an
# error (return 1); with it, DEFAULT is printed instead.
job_data_get() {
    if (($# < 1 || $# > 2)); then
        printf 'job_data_get: usage: job_data_get KEY [DEFAULT]\n' >&2
        return 2
    fi
    job__escape "$1"
    if job__request "data $JOB__ESCAPED"; then
        printf '%s\n' "$JOB__REPLY"
    elif (($# == 2)); then
        printf '%s\n' "$2"
    else
        printf 'job_data_get: %s\n' "$JOB__REPLY" >&2
        return 1
    fi
}

# job_data_count KEY: print the number of items of the array (or object) at KEY.
job_data_count() {
    if (($# != 1)); then
        printf 'job_data_count: usage: job_data_count KEY\n' >&2
        return 2
    fi
    job__escape "$1"
    job__call job_data_count "count $JOB__ESCAPED" && printf '%s\n' "$JOB__REPLY"
}

# job_complete [JSON]: report success; returns once the supervisor stored it.
job_complete() {
    if (($# > 1)); then
        printf 'job_complete: usage: job_complete [JSON] (quote the JSON: one argument)\n' >&2
        return 2
    fi
    job__escape "${1-}"
    job__call job_complete "complete $JOB__ESCAPED"
}

# job_fail MESSAGE: report failure; returns once the supervisor stored it.
job_fail() {
    job__escape "$*"
    job__call job_fail "fail $JOB__ESCAPED"
}

# job_cancelled: true (0) once the supervisor asked the job to stop.
job_cancelled() {
    job__call job_cancelled "cancelled" && [[ $JOB__REPLY == 1 ]]
}

# job_finish [STATUS]: what the EXIT trap does. A non-zero STATUS (default: $?) fails the
# job unless an outcome was reported or the job is being cancelled or stopped. Call it
# from your own EXIT trap if you replace job_init's.
job_finish() {
    local status=${1-$?}
    if [[ -z ${JOB__TO-} || -n ${JOB__GONE-} ]]; then
        return 0
    fi
    job__call job_finish "exit $status"
    return 0
}

# --- private ---------------------------------------------------------------------------

job__log() {
    job__escape "$2"
    job__call "job_$1" "log $1 $JOB__ESCAPED"
}

# The line protocol's escapes: backslash, newline, tab. printf %b undoes them.
job__escape() {
    local bs='\' text=$1
    text=${text//"$bs"/"$bs$bs"}
    text=${text//$'\n'/"${bs}n"}
    JOB__ESCAPED=${text//$'\t'/"${bs}t"}
}

# job__call FUNCTION LINE: a request whose error reply is printed as FUNCTION's error.
job__call() {
    if ! job__request "$2"; then
        printf '%s: %s\n' "$1" "$JOB__REPLY" >&2
        return 1
    fi
}

# job__request LINE: send one request, read its reply into JOB__REPLY; 0 for "ok".
job__request() {
    if [[ -z ${JOB__TO-} ]]; then
        JOB__REPLY="call job_init first"
        return 1
    fi
    if ! kill -0 "$JOB__PID" 2>/dev/null; then
        job__helper_gone "${FUNCNAME[2]:-${FUNCNAME[1]}}"
    fi
    printf '%s\n' "$1" >&"$JOB__TO"
    local reply
    if ! IFS= read -r reply <&"$JOB__FROM"; then
        job__helper_gone "${FUNCNAME[2]:-${FUNCNAME[1]}}"
    fi
    printf -v JOB__REPLY '%b' "${reply#* }"
    [[ $reply == "ok "* ]]
}

# job__helper_gone FUNCTION [WHY]: the helper exited: the supervisor refused the job (77),
# was unreachable for the whole give-up window (75), or the helper could not start. End
# the script with its status.
job__helper_gone() {
    local status=0
    wait "$JOB__PID" 2>/dev/null
    status=$?
    # 127: not our child (we are in a subshell); 0: it exited without saying why.
    if ((status == 0 || status == 127)); then
        status=70
    fi
    JOB__GONE=1
    printf '%s: %s (exit status %d); stopping the script\n' \
        "$1" "${2:-the jobvisor helper is gone}" "$status" >&2
    exit "$status"
}

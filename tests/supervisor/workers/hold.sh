#!/bin/sh
# Hands this job's endpoint and token to a test process (which speaks the protocol for
# it, many jobs at once) and stays alive as the job's process.
echo "$JOBVISOR_SOCKET $JOBVISOR_JOB_ID $JOBVISOR_TOKEN" >> "$HOLD_FILE"
exec sleep 600

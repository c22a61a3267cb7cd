#!/bin/sh
# A worker that never connects (silent from its first second) and has a child that
# ignores SIGTERM, in its process group; the child's PID goes to $CHILD_FILE.
sh -c 'trap "" TERM; exec sleep 600' &
echo $! > "$CHILD_FILE.tmp"
mv "$CHILD_FILE.tmp" "$CHILD_FILE"
exec sleep 600

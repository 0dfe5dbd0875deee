#!/bin/sh
# background: a qmail-spp plugin that answers, exits 0 and leaves a child behind that still
# holds its stdout (a daemonizing helper, a forgotten "&"). Records the child's pid in
# out/background.pid. The reader must not wait for EOF on stdout: the answer counts as soon
# as this shell has exited.
sleep 30 &
echo $! > out/background.pid
echo "HX-Background: left a child holding stdout"
exit 0

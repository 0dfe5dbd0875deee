#!/bin/sh
# hang: a qmail-spp plugin that never answers (a DNS lookup that never returns). Starts a
# sleep in its own process group, records that sleep's pid in out/hang.pid and waits for it:
# only killing the whole group (plugin_timeout) gets rid of both.
sleep 60 &
echo $! > out/hang.pid
wait

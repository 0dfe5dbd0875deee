#!/bin/sh
# stderr: a qmail-spp plugin that logs two lines on stderr (the service log) and accepts.
echo "first log line from stderr.sh" >&2
echo "second log line, pid $$" >&2

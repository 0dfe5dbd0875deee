#!/bin/sh
# stdin: a qmail-spp plugin that reads its standard input. qmail-spp starts plugins with
# fd 0 closed (not /dev/null), so cat fails (EBADF, message on stderr); the plugin reports
# what it found in a header.
if cat; then
  echo "HX-Stdin: readable"
else
  echo "HX-Stdin: closed"
fi

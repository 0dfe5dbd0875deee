#!/usr/bin/python3
# bigout: a qmail-spp plugin that prints 1 MiB and more. Without arguments: one header
# command, then 1 MiB of lines starting with '#' (no command: ignored), then an E that lies
# far past the output cap and must not count. With "headers": 1 MiB of H commands (a header
# flood: far more than fits one IPC frame), then the same late E.
import os
import sys

out = sys.stdout
flood = len(sys.argv) > 1 and sys.argv[1] == "headers"
try:
    out.write("HX-Big-Output: start\n")
    line = ("HX-Flood: " + "f" * 117 + "\n") if flood else ("#" * 127 + "\n")
    for _ in range(1024 * 1024 // len(line)):
        out.write(line)
    out.write("E550 5.7.1 past the output cap: must not count\n")
    out.flush()
except BrokenPipeError:  # the reader may stop reading once it has enough: fine
    os._exit(0)

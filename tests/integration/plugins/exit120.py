#!/usr/bin/python3
# exit120: prints a header command, then exits 120, the status qmail-spp reserves for "the
# plugin could not be executed": 451 qmail-spp failure: <line>: can't execute.
import sys

sys.stdout.write("HX-Exit-120: printed before exiting 120\n")
sys.stdout.flush()
sys.exit(120)

#!/bin/sh
# exit1: prints a rejection, then exits 1 (as mfdnscheck does). qmail-spp ignores every exit
# status but 120: the E counts.
echo "E550 5.1.8 sorry, printed before exit 1"
exit 1

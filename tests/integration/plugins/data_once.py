#!/usr/bin/python3
# data_once: a [data] plugin that refuses the first DATA of a connection (keyed on the
# client's port) with a temporary error and accepts the next one, adding a header then. The
# transaction stays open after the refusal, so the client can simply send DATA again.
import os

marker = f"out/data_once.{os.environ['TCPREMOTEPORT']}"
if not os.path.exists(marker):
    open(marker, "w").close()
    print("E451 4.7.1 not yet, send DATA again")
else:
    print("HX-Data-Once: accepted on the second DATA")

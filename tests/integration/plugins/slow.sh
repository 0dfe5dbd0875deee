#!/bin/sh
# slow: a [mail] plugin that takes 2 seconds, but only in the session that said HELO
# slow.test (the concurrency test's one slow session); everyone else gets an instant answer.
case "$SMTPHELOHOST" in
  slow.test) sleep 2; echo "HX-Slow: yes" ;;
esac

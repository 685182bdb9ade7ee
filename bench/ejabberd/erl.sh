#!/bin/sh
# ERL for ejabberdctl (set in ejabberdctl.cfg.in): ejabberdctl starts the VM through
# `su ejabberd`, and PAM (pam_limits) resets the soft descriptor limit to 1024 there, which a
# 10,000-session run exceeds ("Failed TCP accept: too many open files"). Raise the soft limit
# to the hard one, as the other servers have, then run the real erl.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
exec /usr/bin/erl "$@"

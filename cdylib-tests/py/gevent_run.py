#!/usr/bin/env python3
"""Runs a Python script under gevent's monkey patching (for scripts/bench).

Usage: gevent_run.py SCRIPT [ARGS...]

Patches the standard library with `gevent.monkey.patch_all()` before anything else is
imported, then runs SCRIPT as `__main__` with `sys.argv = [SCRIPT, ARGS...]`: the same
unmodified script, its threads turned into greenlets by gevent instead of by greenify.
"""

from gevent import monkey

monkey.patch_all()

import runpy  # noqa: E402  (after patching, as gevent requires)
import sys  # noqa: E402


def main():
    if len(sys.argv) < 2:
        print(f"usage: {sys.argv[0]} SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Record the README's transcript: `helm safe-upgrade` through real helm on a terminal.

Runs on the demo bed (`scripts/demo --keep` first; then `scripts/demo stop`): the plugin
as helm starts it, in a pseudo-terminal of 100 columns, the operator's keys sent as a
person types them (`y`, then at each pause: show status, continue, continue). What the
terminal finally shows is rendered by a terminal emulator (pyte), so spinners and the
menu's redraws appear as a person saw them when each finished. Prints the transcript.

    pip install pyte  # the terminal emulator
    scripts/demo --keep && python3 scripts/transcript.py && scripts/demo stop
"""

import os
import pty
import select
import subprocess
import sys
import time

import pyte

COLUMNS, ROWS = 100, 400
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, ".cache", "demo")


def demo_env():
    """The environment of .cache/demo/env.sh, read by the shell that would source it."""
    out = subprocess.run(
        ["bash", "-c", f"source {DEMO}/env.sh && env -0"], check=True, capture_output=True
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    env.update({"COLUMNS": str(COLUMNS), "LINES": str(ROWS), "TERM": "xterm-256color", "NO_COLOR": "1"})
    env.pop("CI", None)
    return env


class Terminal:
    def __init__(self, argv, env):
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.seen = b""
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(ROOT)
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        # The pty's size, as a terminal says it.
        import fcntl
        import struct
        import termios

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))

    def read(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return None
        if not data:
            return None
        self.seen += data
        self.stream.feed(data)
        return True

    def expect(self, text, timeout=120):
        deadline = time.time() + timeout
        start = len(self.seen)
        while text.encode() not in self.seen[start:]:
            if time.time() > deadline or self.read(1) is None:
                sys.exit(f"transcript: never saw {text!r}; the screen:\n" + "\n".join(self.screen.display))
        return True

    def showing(self, text, timeout=120):
        """Wait until the screen shows `text` (a menu is up while its cursor line is)."""
        deadline = time.time() + timeout
        while not any(text in line for line in self.screen.display):
            if time.time() > deadline or self.read(1) is None:
                sys.exit(f"transcript: the screen never showed {text!r}:\n" + self.text())
        return True

    def send(self, keys):
        time.sleep(0.5)
        os.write(self.fd, keys.encode())

    def finish(self):
        while self.read(5) is not None:
            pass
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def text(self):
        lines = [line.rstrip() for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)


def main():
    env = demo_env()
    command = ["helm", "safe-upgrade", "bsr", "--to", "1.3.2", "--chart", "demo/bsr", "--policy", "bed/policies/bsr-bed.yaml"]
    term = Terminal(["bash", "-c", 'printf "$ %s\\n" "$*"; exec "$@"', "-", *command], env)
    term.expect("[y/N]")
    term.send("y\r")
    # The menu's cursor line, once each pause has drawn it (the line the menu leaves after
    # a choice says "What next? …: <choice>", so that is not waited for).
    menu = "> continue with the next hop"
    term.showing(menu)
    # Down three times to "show the release's status", Enter; then Enter (continue).
    term.send("\x1b[B\x1b[B\x1b[B\r")
    term.expect("TEST SUITE")
    term.showing(menu)
    term.send("\r")
    term.expect("Next: 1.2.6")
    term.showing(menu)
    term.send("\r")
    code = term.finish()
    print(term.text())
    print(f"(exit {code})", file=sys.stderr)


if __name__ == "__main__":
    main()

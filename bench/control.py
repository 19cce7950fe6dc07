"""A group daemon's control socket (newline-delimited JSON, src/group/control.ts), for the bench
scripts that ask a daemon for its status without starting `epochfs status` (a node process)."""
import json
import socket


def ask(path, request=None, timeout=10):
    """Sends one request (default {"op": "status"}) to the socket at `path`; returns the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall((json.dumps(request or {"op": "status"}) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.split(b"\n", 1)[0])

#!/usr/bin/python3
"""Create accounts PREFIX{0..COUNT-1}@DOMAIN with one password in a running xedge, fast enough for
200,000 of them: through the session server's admin socket (sm/admin.c, `user add JID SALT1 ITER1
STORED1 SERVER1 SALT256 ITER256 STORED256 SERVER256`), the SCRAM keys derived once for all the
accounts (one salt, as xedgectl would derive them per account: RFC 5802 §3, PBKDF2 4096), several
connections each keeping a few commands in flight (the socket accepts one line of 8 KiB ahead of
the command running).  One salt for every account is a benchmark's shortcut, never a deployment's:
it lets xedge-bench's --scram-cache derive the client keys once too.

    usage: provision.py ADMIN_SOCKET PREFIX COUNT PASSWORD [DOMAIN]
Prints one JSON line: {"method", "users", "seconds", "per_sec"}; exit status 1 on any error."""
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time

ITER = 4096
CONNS = 8          # admin connections (the server takes 16 at most)
WINDOW = 12        # commands in flight per connection: 12 x ~330 bytes < the 8 KiB line bound


def keys(name, password, salt):
    salted = hashlib.pbkdf2_hmac(name, password.encode(), salt, ITER)
    client = hmac.new(salted, b"Client Key", name).digest()
    server = hmac.new(salted, b"Server Key", name).digest()
    return "%s %d %s %s" % (salt.hex(), ITER, hashlib.new(name, client).hexdigest(), server.hex())


def worker(path, lines, errors):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rb")
    sent = done = 0
    while done < len(lines):
        while sent < len(lines) and sent - done < WINDOW:
            s.sendall(lines[sent])
            sent += 1
        # each reply ends with a line "ok" or "error: ..."
        line = f.readline()
        if not line:
            errors.append("the admin socket closed after %d commands" % done)
            return
        if line.startswith(b"error"):
            errors.append(line.decode().strip())
            done += 1
        elif line.strip() == b"ok":
            done += 1
    s.close()


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    path, prefix, count, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    domain = sys.argv[5] if len(sys.argv) == 6 else "localhost"
    t0 = time.monotonic()
    salt1, salt256 = os.urandom(16), os.urandom(16)
    k = "%s %s" % (keys("sha1", password, salt1), keys("sha256", password, salt256))
    lines = [("user add %s%d@%s %s\n" % (prefix, i, domain, k)).encode() for i in range(count)]
    errors = []
    threads = [threading.Thread(target=worker, args=(path, lines[j::CONNS], errors))
               for j in range(CONNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    if errors:
        sys.stderr.write("provision.py: %d errors, the first: %s\n" % (len(errors), errors[0]))
        sys.exit(1)
    print(json.dumps({"method": "admin socket, %d connections, keys derived once" % CONNS,
                      "users": count, "seconds": round(secs, 1),
                      "per_sec": round(count / secs) if secs > 0 else 0}))


main()

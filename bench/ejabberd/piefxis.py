#!/usr/bin/python3
"""Write a XEP-0227 (PIEFXIS) file with accounts PREFIX{FIRST..FIRST+COUNT-1}@DOMAIN for
`ejabberdctl import_piefxis`, with SCRAM-SHA-1 credentials computed here (a random salt per
account, PBKDF2 4096 as ejabberd's own), so that the import stores keys and never a password.

  piefxis.py --out FILE --domain D --prefix bench --first 0 --count N --password pw

A "%d" in --password becomes the account number. The credentials use the importer's
"scram:STORED,SERVER,SALT,ITER" form. ejabberd 23.01 keeps these three fields base64-encoded
in its #scram{} record while its importer base64-decodes them once
(ejabberd_piefxis:parse_scram_password), so each is base64-encoded twice here; register.sh
checks the result by logging in with SCRAM-SHA-1 and PLAIN.
"""
import argparse
import base64
import hashlib
import hmac
import multiprocessing
import os

ITER = 4096


def cred(args):
    password, = args
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt, ITER)
    stored = hashlib.sha1(hmac.new(salted, b"Client Key", hashlib.sha1).digest()).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha1).digest()

    def b2(x):
        return base64.b64encode(base64.b64encode(x)).decode()
    return f"scram:{b2(stored)},{b2(server)},{b2(salt)},{ITER}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--prefix", default="bench")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--password", default="pw")
    a = p.parse_args()
    nums = range(a.first, a.first + a.count)
    with multiprocessing.Pool(max(1, os.cpu_count() or 1)) as pool:
        creds = pool.map(cred, [(a.password.replace("%d", str(i)),) for i in nums], chunksize=256)
    with open(a.out, "w") as f:
        f.write("<?xml version='1.0' encoding='UTF-8'?>\n"
                "<server-data xmlns='urn:xmpp:pie:0'>\n"
                f"<host jid='{a.domain}'>\n")
        for i, c in zip(nums, creds):
            f.write(f"<user name='{a.prefix}{i}' password='{c}'/>\n")
        f.write("</host>\n</server-data>\n")


if __name__ == "__main__":
    main()

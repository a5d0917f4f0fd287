#!/usr/bin/env python3
"""Captures a FETCH-heavy trace from a real Dovecot (the lab on 127.0.0.1:10143).

Logs in, fills the scratch mailbox `benchtrace` with realistic messages (once),
then saves every byte the server sends for SELECT and
`FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE BODY.PEEK[])`
to OUT, and the responses to a metadata-only FETCH (no bodies, many small
tokens) to OUT with `.trace` replaced by `-meta.trace`.
Usage: capture_fetch_trace.py OUT [host port user password]
"""
import random
import re
import socket
import sys
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
import datetime

out = sys.argv[1]
host, port, user, pw = (sys.argv[2:6] + ["127.0.0.1", "10143", "testuser1", "pass"][len(sys.argv[2:6]):])
rnd = random.Random(7)
WORDS = ("the quick brown fox jumps over lazy dog imap server mailbox message report meeting "
         "budget schedule review draft update project team quarter release notes invoice "
         "travel lunch Grüße naïve café").split()


def words(n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def para(size):
    s = []
    while sum(map(len, s)) < size:
        s.append(words(rnd.randint(8, 16)).capitalize() + ".")
    return "\n".join(s) + "\n"


def make(i):
    m = EmailMessage()
    people = ["Alice Example <alice@example.com>", '"Bob \\"B\\" Builder" <bob@example.org>',
              "Carol Jones <carol@mail.example.net>", "noreply@lists.example.com",
              "Dörte Müller <doerte@example.de>"]
    m["From"] = rnd.choice(people)
    m["To"] = ", ".join(rnd.sample(people, rnd.randint(1, 3)))
    if rnd.random() < 0.3:
        m["Cc"] = rnd.choice(people)
    m["Subject"] = words(rnd.randint(3, 9)).capitalize()
    m["Date"] = format_datetime(datetime.datetime(2026, 11, rnd.randint(1, 21), rnd.randint(0, 23),
                                                  rnd.randint(0, 59), tzinfo=datetime.timezone.utc))
    m["Message-ID"] = make_msgid(domain="example.com")
    if rnd.random() < 0.3:
        m["In-Reply-To"] = make_msgid(domain="example.com")
    size = rnd.choice([400, 1200, 3000, 6000, 12000, 20000])
    kind = rnd.random()
    m.set_content(para(size))
    if kind < 0.35:
        m.add_alternative("<html><body><p>" + para(size).replace("\n", "</p><p>") + "</p></body></html>",
                          subtype="html")
    if 0.25 < kind < 0.45:
        blob = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([2000, 9000, 40000])))
        m.add_attachment(blob, maintype="application", subtype="octet-stream", filename="data%d.bin" % i)
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Conn:
    def __init__(self):
        self.s = socket.create_connection((host, int(port)))
        self.buf = b""
        self.log = bytearray()
        self.n = 0

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def response(self):
        """One complete response (lines + literals), raw."""
        out = b""
        while True:
            while b"\n" not in self.buf:
                self.fill()
            i = self.buf.index(b"\n") + 1
            line, self.buf = self.buf[:i], self.buf[i:]
            out += line
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self.fill()
            out, self.buf = out + self.buf[:n], self.buf[n:]

    def cmd(self, c, record=False, literal=None):
        self.n += 1
        tag = b"a%d" % self.n
        self.s.sendall(tag + b" " + c + b"\r\n" + (literal + b"\r\n" if literal is not None else b""))
        resps = []
        while True:
            r = self.response()
            resps.append(r)
            if record:
                self.log += r
            if r.startswith(tag + b" "):
                return resps


c = Conn()
c.log += c.response()
c.cmd(b"LOGIN %s %s" % (user.encode(), pw.encode()))
c.cmd(b"CREATE benchtrace")
sel = c.cmd(b"SELECT benchtrace")
exists = max([int(m.group(1)) for r in sel for m in [re.match(rb"\* (\d+) EXISTS", r)] if m] or [0])
for i in range(exists, 60):
    msg = make(i)
    r = c.cmd(b"APPEND benchtrace (\\Seen) {%d+}" % len(msg), literal=msg)
    assert r[-1].split(b" ")[1] == b"OK", r[-1]
c.cmd(b"SELECT benchtrace", record=True)
r = c.cmd(b"FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE BODY.PEEK[])", record=True)
assert r[-1].split(b" ")[1] == b"OK", r[-1]
c.cmd(b"LOGOUT", record=True)
open(out, "wb").write(bytes(c.log))
print("wrote", len(c.log), "bytes,", len(r) - 1, "FETCH responses")

c = Conn()
c.response()
c.cmd(b"LOGIN %s %s" % (user.encode(), pw.encode()))
c.cmd(b"EXAMINE benchtrace")
r = c.cmd(b"FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE INTERNALDATE "
          b"BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])", record=True)
c.log = bytearray(b"".join(r))
meta = out.replace(".trace", "-meta.trace")
open(meta, "wb").write(bytes(c.log))
print("wrote", len(c.log), "bytes to", meta)

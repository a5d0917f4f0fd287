#!/usr/bin/env python3
"""Writes a synthetic FETCH-heavy trace in Dovecot 2.3's exact response style.

Used when no Dovecot lab is reachable to capture a real one. Reproducible
(fixed seed). Usage: gen_fetch_trace.py OUT
"""
import random
import sys

rnd = random.Random(20261122)
WORDS = ("the quick brown fox jumps over lazy dog imap server mailbox message "
         "report meeting budget schedule review draft update project team "
         "quarter release notes invoice travel lunch").split()
NAMES = [("Alice Example", "alice", "example.com"), ("Bob Builder", "bob", "example.org"),
         ("Carol \\\"CJ\\\" Jones", "carol", "mail.example.net"), (None, "noreply", "lists.example.com"),
         ("Dave", "dave", "example.com")]
FLAGS = ["", "\\Seen", "\\Seen \\Answered", "\\Flagged", "\\Seen $Forwarded", "\\Draft"]


def words(n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def q(s):
    return "NIL" if s is None else '"' + s + '"'


def addr(a):
    return "((%s NIL %s %s))" % (q(a[0]), q(a[1]), q(a[2]))


def body_text(size):
    lines, total = [], 0
    while total < size:
        line = words(rnd.randint(6, 14))
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def message(i):
    frm, to = rnd.choice(NAMES), rnd.choice(NAMES)
    subject = words(rnd.randint(3, 8)).capitalize()
    date = "Sun, %d Nov 2026 %02d:%02d:%02d +0000" % (rnd.randint(1, 21), rnd.randint(0, 23),
                                                     rnd.randint(0, 59), rnd.randint(0, 59))
    msgid = "<%d.%d@example.com>" % (i, rnd.randint(1000, 99999))
    size = rnd.choice([600, 1500, 3000, 6000, 12000, 24000, 48000])
    multipart = rnd.random() < 0.4
    hdr = ("Return-Path: <%s@%s>\r\nDelivered-To: testuser1@example.com\r\n"
           "From: %s <%s@%s>\r\nTo: %s <%s@%s>\r\nSubject: %s\r\nDate: %s\r\n"
           "Message-ID: %s\r\nMIME-Version: 1.0\r\n") % (
        frm[1], frm[2], (frm[0] or "").replace('\\', ''), frm[1], frm[2],
        (to[0] or "").replace('\\', ''), to[1], to[2], subject, date, msgid)
    if multipart:
        b = "=_%08x" % rnd.getrandbits(32)
        p1, p2 = body_text(size // 3), body_text(size // 2)
        p2 = "<html><body>" + p2 + "</body></html>\r\n"
        hdr += 'Content-Type: multipart/alternative; boundary="%s"\r\n\r\n' % b
        body = ("--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s--%s--\r\n") % (b, p1, b, p2, b)
        bs = ('(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" %d %d NIL NIL NIL NIL)'
              '("text" "html" ("charset" "utf-8") NIL NIL "7bit" %d %d NIL NIL NIL NIL) '
              '"alternative" ("boundary" "%s") NIL NIL NIL)') % (
            len(p1), p1.count("\r\n"), len(p2), p2.count("\r\n"), b)
    else:
        body = body_text(size)
        hdr += "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        bs = '("text" "plain" ("charset" "utf-8") NIL NIL "7bit" %d %d NIL NIL NIL NIL)' % (
            len(body), body.count("\r\n"))
    msg = (hdr + body).encode()
    if rnd.random() < 0.15:
        # Dovecot sends a subject with 8-bit or CR/LF content as a literal.
        subj = subject.encode() + " \xe2\x9c\x93".encode("latin-1")
        subj_arg = b"{%d}\r\n" % len(subj) + subj
    else:
        subj_arg = q(subject).encode()
    env = (b'(' + q(date).encode() + b' ' + subj_arg + b' ' + addr(frm).encode() + b' ' +
           addr(frm).encode() + b' ' + addr(frm).encode() + b' ' + addr(to).encode() +
           b' NIL NIL NIL ' + q(msgid).encode() + b')')
    internal = "%02d-Nov-2026 %02d:%02d:%02d +0000" % (rnd.randint(1, 21), rnd.randint(0, 23),
                                                     rnd.randint(0, 59), rnd.randint(0, 59))
    return (b"* %d FETCH (UID %d FLAGS (%s) RFC822.SIZE %d INTERNALDATE \"%s\" ENVELOPE " % (
        i, i + 100, rnd.choice(FLAGS).encode(), len(msg), internal.encode()) + env +
        b" BODYSTRUCTURE " + bs.encode() + b" BODY[] {%d}\r\n" % len(msg) + msg + b")\r\n")


def main():
    out = [b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
           b"AUTH=PLAIN] Dovecot ready.\r\n"]
    out.append(b"a1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT "
               b"SORT=DISPLAY THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE "
               b"UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT "
               b"SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY "
               b"PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY] Logged in\r\n")
    n = 120
    out.append(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"
               b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)] "
               b"Flags permitted.\r\n* %d EXISTS\r\n* 0 RECENT\r\n"
               b"* OK [UIDVALIDITY 1763780000] UIDs valid\r\n* OK [UIDNEXT %d] Predicted next UID\r\n"
               b"* OK [HIGHESTMODSEQ 250] Highest\r\na2 OK [READ-WRITE] Select completed "
               b"(0.001 + 0.000 secs).\r\n" % (n, n + 101))
    for i in range(1, n + 1):
        out.append(message(i))
    out.append(b"a3 OK Fetch completed (0.012 + 0.000 + 0.011 secs).\r\n")
    open(sys.argv[1], "wb").write(b"".join(out))


main()

#!/usr/bin/env python3
"""Keeps a feature store honest: consumes Assent's change feed and deletes a person's rows as
soon as the use they feed may no longer be made of their data — a withdrawal or objection
(decided by Assent itself, not re-implemented here) or an erasure.

The store is a SQLite file with a table `features(subject TEXT, ...)` used for one
(category, purpose) — say service_generated.telemetry for ai_training.first_party. The script
keeps, in the same file, the last feed position it processed and a pseudonym -> subject map,
and applies each entry in one transaction with that position: killed at any moment, it
resumes where it stopped and never applies an entry twice.

    ASSENT_KEY=assent_... python3 feature_store.py --server http://127.0.0.1:8080 \\
        --db features.sqlite --category service_generated.telemetry \\
        --purpose ai_training.first_party --follow

Without --follow it processes what the ledger holds and exits (a cron job). Uses only the
standard library. See docs/integrations.md.
"""
import argparse
import http.client
import json
import os
import sqlite3
import sys
import time
import urllib.parse


def connect(db_path):
    db = sqlite3.connect(db_path, isolation_level=None)  # transactions are explicit
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS features (subject TEXT NOT NULL, name TEXT, value REAL)")
    db.execute("CREATE INDEX IF NOT EXISTS features_subject ON features(subject)")
    db.execute("CREATE TABLE IF NOT EXISTS assent_feed (id INTEGER PRIMARY KEY CHECK (id = 1), "
               "last_position INTEGER NOT NULL)")
    db.execute("INSERT OR IGNORE INTO assent_feed VALUES (1, 0)")
    # An erasure names the party by pseudonym only (its id is gone from Assent by then): the
    # map is learnt from the consent lines, which name both for operator and service keys.
    db.execute("CREATE TABLE IF NOT EXISTS assent_pseudonyms (pseudonym TEXT PRIMARY KEY, "
               "subject TEXT NOT NULL)")
    return db


class Assent:
    def __init__(self, server, key):
        url = urllib.parse.urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            sys.exit(f"--server must be a URL such as http://127.0.0.1:8080, not {server!r}")
        self.url, self.key = url, key

    def _connection(self, timeout):
        cls = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        return cls(self.url.hostname, self.url.port, timeout=timeout)

    def allowed(self, category, purpose, subject, position):
        """Assent's decision for the subject, reflecting at least `position` (the consistency
        token: never an answer from before the entry being processed)."""
        c = self._connection(30)
        body = json.dumps({"category": category, "purpose": purpose, "subjects": [subject],
                           "min_position": position})
        c.request("POST", "/v1/decisions", body, {"Authorization": "Bearer " + self.key,
                                                  "Content-Type": "application/json"})
        r = c.getresponse()
        answer = json.loads(r.read() or b"{}")
        if r.status != 200:
            raise RuntimeError(f"decision answered {r.status}: {answer.get('detail')}")
        return answer["decision"] == "allow"

    def changes(self, after, follow):
        """The feed's entries after `after`, one dict each; ends at the head unless `follow`.
        A keep-alive line comes every 15 s, so a read blocking for 60 s means a dead link."""
        c = self._connection(60)
        c.request("GET", f"/v1/changes?after={after}&follow={'true' if follow else 'false'}",
                  headers={"Authorization": "Bearer " + self.key})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"the feed answered {r.status}: {r.read()[:300]!r}")
        for line in iter(r.readline, b""):
            if line.strip():
                yield json.loads(line)


def apply(db, assent, entry, category, purpose):
    """One entry, in one transaction with the position it advances to. Returns a note or None."""
    position = entry.get("position")
    if position is None:  # the feed's last line: a problem naming where to resume
        raise ConnectionResetError(entry.get("detail", "the feed ended"))
    note = None
    db.execute("BEGIN IMMEDIATE")
    try:
        (last,) = db.execute("SELECT last_position FROM assent_feed").fetchone()
        if position <= last:  # already applied (a resumed feed never repeats, but be sure)
            db.execute("ROLLBACK")
            return None
        kind = entry["kind"]
        if kind == "consent" and "subject" in entry and not entry.get("erased"):
            subject = entry["subject"]
            if entry.get("pseudonym"):
                db.execute("INSERT OR REPLACE INTO assent_pseudonyms VALUES (?, ?)",
                           (entry["pseudonym"], subject))
            if entry["action"] in ("withdraw", "object") and \
                    not assent.allowed(category, purpose, subject, position):
                n = db.execute("DELETE FROM features WHERE subject = ?", (subject,)).rowcount
                note = f"{position}: {entry['action']} by {subject}: deleted {n} rows"
        elif kind == "erasure" and entry.get("party") == "subject":
            row = db.execute("SELECT subject FROM assent_pseudonyms WHERE pseudonym = ?",
                             (entry["pseudonym"],)).fetchone()
            if row:
                n = db.execute("DELETE FROM features WHERE subject = ?", row).rowcount
                db.execute("DELETE FROM assent_pseudonyms WHERE pseudonym = ?", (entry["pseudonym"],))
                note = f"{position}: erasure of {row[0]}: deleted {n} rows"
        db.execute("UPDATE assent_feed SET last_position = ?", (position,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return note


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True)
    p.add_argument("--db", required=True, help="the feature store (SQLite)")
    p.add_argument("--category", required=True)
    p.add_argument("--purpose", required=True)
    p.add_argument("--follow", action="store_true", help="stay, applying entries as they commit")
    p.add_argument("--key-file", help="a file holding the API key (else ASSENT_KEY)")
    args = p.parse_args()
    key = open(args.key_file).read().strip() if args.key_file else os.environ.get("ASSENT_KEY", "")
    if not key:
        sys.exit("an operator or service key is needed: ASSENT_KEY or --key-file")
    db = connect(args.db)
    assent = Assent(args.server, key)
    backoff = 0.1
    while True:
        (after,) = db.execute("SELECT last_position FROM assent_feed").fetchone()
        try:
            for entry in assent.changes(after, args.follow):
                note = apply(db, assent, entry, args.category, args.purpose)
                if note:
                    print(note, flush=True)
                backoff = 0.1
            if not args.follow:
                return
        except RuntimeError as e:  # a refusal (a bad key, a role without access): say it, stop
            sys.exit(str(e))
        except (OSError, http.client.HTTPException) as e:
            if not args.follow:
                sys.exit(f"the feed broke off ({e}); run again to resume after the last position applied")
            print(f"the feed broke off ({e}); resuming in {backoff:.1f} s", file=sys.stderr)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


if __name__ == "__main__":
    main()

"""docs/integrations.md's worked example, run as written against the real `assent serve`: a
feature store consuming the change feed deletes a person's rows after a withdrawal that makes
the use it serves deny, and after an erasure; it keeps what is still allowed, resumes from the
position it stored, and applies nothing twice."""
import json
import re
import sqlite3
import subprocess
import sys
import urllib.request

import pytest

from conftest import ASSENT, ROOT

SCRIPT = ROOT / "examples" / "integrations" / "feature_store.py"


@pytest.fixture
def server(tmp_path):
    proc = subprocess.Popen([str(ASSENT), "serve", "--demo", "--data", str(tmp_path / "data"),
                             "--listen", "127.0.0.1:0", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    text = b""
    while b"try:" not in text:
        line = proc.stdout.readline()
        assert line, "the server did not start: " + text.decode()
        text += line
    port = int(re.search(rb"on http://127\.0\.0\.1:(\d+)", text).group(1))
    keys = {m.group(1).decode(): m.group(2).decode()
            for m in re.finditer(rb"  (service|operator|auditor) +(assent_[0-9a-f]+)", text)}
    yield f"http://127.0.0.1:{port}", keys
    proc.terminate()
    proc.wait(30)


def call(base, key, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def run_script(base, key_file, db, follow=False):
    args = [sys.executable, str(SCRIPT), "--server", base, "--key-file", str(key_file), "--db",
            str(db), "--category", "service_generated.telemetry", "--purpose",
            "ai_training.first_party"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def rows(db):
    with sqlite3.connect(db) as c:
        return sorted(r[0] for r in c.execute("SELECT DISTINCT subject FROM features"))


def test_the_feature_store_example_deletes_on_withdrawal_and_erasure(server, tmp_path):
    base, keys = server
    key_file = tmp_path / "key"
    key_file.write_text(keys["service"] + "\n")
    db = tmp_path / "features.sqlite"
    first = run_script(base, key_file, db)  # creates its tables, processes the demo's entries
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO features VALUES (?, 'latency_p50', 1.0)",
                      [("ann",), ("bob",), ("cat",), ("dan",)])
    ai = "service-generated-for-ai-training"
    call(base, keys["service"], "POST", "/v1/subjects/ann/consents", {"rule": ai, "action": "withdraw"})
    # An objection to marketing leaves AI training allowed: bob's rows stay.
    call(base, keys["service"], "POST", "/v1/subjects/bob/consents",
         {"rule": "service-generated-for-marketing", "action": "withdraw"})
    call(base, keys["service"], "POST", "/v1/subjects/cat/consents",
         {"rule": "service-generated-for-improvement", "action": "withdraw"})
    r = run_script(base, key_file, db)  # a cron run: learns cat's pseudonym, keeps cat's rows
    assert r.returncode == 0, r.stderr
    assert rows(db) == ["bob", "cat", "dan"]
    assert "withdraw by ann: deleted 1 rows" in r.stdout
    erased = call(base, keys["operator"], "DELETE", "/v1/subjects/cat")
    assert erased["erased"] is True
    r = run_script(base, key_file, db)
    assert r.returncode == 0, r.stderr
    assert rows(db) == ["bob", "dan"]
    assert "erasure of cat: deleted 1 rows" in r.stdout
    with sqlite3.connect(db) as c:
        (last,) = c.execute("SELECT last_position FROM assent_feed").fetchone()
    assert last == erased["position"]
    # Run again: nothing new, nothing applied twice.
    again = run_script(base, key_file, db)
    assert again.returncode == 0 and again.stdout == ""
    # A wrong key is refused with the server's answer, changing nothing.
    key_file.write_text("assent_" + "0" * 64)
    bad = run_script(base, key_file, db)
    assert bad.returncode != 0 and "401" in bad.stderr
    assert rows(db) == ["bob", "dan"]


def test_the_feature_store_example_follows_the_feed(server, tmp_path):
    import time
    base, keys = server
    key_file = tmp_path / "key"
    key_file.write_text(keys["operator"])
    db = tmp_path / "features.sqlite"
    assert run_script(base, key_file, db).returncode == 0
    with sqlite3.connect(db) as c:
        c.executemany("INSERT INTO features VALUES (?, 'x', 1.0)", [("eve",), ("fay",)])
    follower = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--server", base, "--key-file", str(key_file), "--db", str(db),
         "--category", "service_generated.telemetry", "--purpose", "ai_training.first_party",
         "--follow"], stdout=subprocess.PIPE, text=True)
    try:
        call(base, keys["service"], "POST", "/v1/subjects/eve/consents",
             {"rule": "service-generated-for-ai-training", "action": "withdraw"})
        deadline = time.time() + 10
        while rows(db) != ["fay"] and time.time() < deadline:
            time.sleep(0.05)
        assert rows(db) == ["fay"], "the follower deleted eve's rows as the withdrawal committed"
    finally:
        follower.terminate()
        follower.wait(10)

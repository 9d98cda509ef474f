"""Fixtures for the Python package's tests (run by `make test` with Debian's pytest): the
release binary and package (`ASSENT_BIN`, `PYTHONPATH=build/release/python`), ledgers built
through the real CLI, and snapshot files made by `assent snapshot`."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ASSENT_BUILD", ROOT / "build" / "release"))
ASSENT = Path(os.environ.get("ASSENT_BIN", BUILD / "assent"))
GATE_BENCH = BUILD / "assent_gate_bench"
EXAMPLES = sorted((ROOT / "examples" / "terms").glob("*.yaml"))

sys.path.insert(0, str(BUILD / "python"))


def run(*args, check=True, **kw):
    """Runs the assent binary; returns the CompletedProcess (text)."""
    r = subprocess.run([str(ASSENT), *map(str, args)], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"assent {' '.join(map(str, args))} exited {r.returncode}: {r.stderr}")
    return r


def publish_examples(data):
    """The two example versions that lint (2023-08-07, 2023-08-11), as recorded history."""
    for f in EXAMPLES[1:]:
        run("terms", "publish", "--data", data, "--backfill", f)


# Purposes whose rules ask for consent or allow objections in the example terms.
CHOICE_PURPOSES = ["product_development.quality_review", "ai_training.first_party", "ai_training",
                   "product_development", "product_development.analytics"]


def random_events(rng, ledger_names, n, subjects, accounts):
    """`n` consent events in time order between 2023-08-07 and 2026-06-01, each naming only
    what the terms in effect at its time define. `ledger_names(at)` -> (categories, purposes)."""
    import datetime as dt
    start = dt.datetime(2023, 8, 7, 1, tzinfo=dt.timezone.utc)
    end = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    times = sorted(start + (end - start) * rng.random() for _ in range(n))
    # A third of the events in the first version's four days, so that both versions matter.
    times = sorted(times[: n // 3 * 2] + [start + dt.timedelta(days=3.9 * rng.random()) for _ in range(n - n // 3 * 2)])
    events = []
    for t in times:
        at = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        cats, purps = ledger_names(at)
        # Half the events about the purposes that ask for a choice, so that questions find them.
        asked = [p for p in CHOICE_PURPOSES if p in purps]
        e = {"action": rng.choice(["grant", "grant", "withdraw"]),
             "categories": rng.sample(cats, rng.randint(1, 2)),
             "purposes": ([rng.choice(asked)] if rng.random() < 0.5 else rng.sample(purps, rng.randint(1, 2))),
             "at": at}
        if rng.random() < 0.7:
            e["subject"] = rng.choice(subjects)
        else:
            e["account"] = rng.choice(accounts)
        events.append(e)
    return events


@pytest.fixture(scope="session")
def assent_module():
    import assent
    return assent


@pytest.fixture(scope="session")
def history(tmp_path_factory, assent_module):
    """A ledger with both example versions and 400 random events from 12 subjects and 4
    accounts (grants and withdrawals, parents and leaves, quality-review grants that expire),
    imported through `assent ledger import`, and its snapshot file."""
    d = tmp_path_factory.mktemp("history")
    data = d / "data"
    publish_examples(data)
    names_at = assent_module.Ledger.open(str(data))
    rng = random.Random(12)
    events = random_events(rng, lambda at: (names_at.categories(at), names_at.purposes(at)), 400,
                           [f"u{i}" for i in range(12)], [f"a{i}" for i in range(4)])
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    run("ledger", "import", "--data", data, "--rehash", d / "events.jsonl")
    run("snapshot", "--data", data, "--out", d / "consent.snap")
    return {"dir": d, "data": data, "snapshot": d / "consent.snap", "events": events}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A generated gate workload (assent_gate_bench generate): a ledger with the example
    terms and objections, a 200,000-item manifest, its snapshot, and the CLI filter's kept
    lines and report."""
    d = tmp_path_factory.mktemp("corpus")
    subprocess.run([str(GATE_BENCH), "generate", str(d), "200000", "20000"], check=True,
                   capture_output=True)
    run("snapshot", "--data", d / "data", "--out", d / "consent.snap")
    run("filter", "--snapshot", d / "consent.snap", "--purpose", "ai_training.first_party",
        "--in", d / "manifest.jsonl", "--out", d / "kept.jsonl", "--report", d / "report.json")
    return {"dir": d, "snapshot": d / "consent.snap", "manifest": d / "manifest.jsonl",
            "kept": d / "kept.jsonl", "report": json.loads((d / "report.json").read_text())}

"""decide() and decide_many() answer exactly as `assent check` does: hundreds of generated
questions over a random history (several purposes, parents and leaves, several parties,
past times, stale and expired grants), against the real binary."""

import json
import random

import numpy as np
import pytest

from conftest import CHOICE_PURPOSES, run


def about_an_event(rng, ledger, events):
    """A question about what one recorded event chose: a leaf of its scope, its party (and
    maybe another), at its time or later, or now — where consented, withdrawn, stale and
    expired answers are."""
    import datetime as dt
    e = rng.choice(events)
    at = None
    if rng.random() < 0.6:
        t = dt.datetime.strptime(e["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
        t += dt.timedelta(days=rng.choice([0.001, 1, 30, 400]))
        at = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    cats, purps = ledger.categories(at), ledger.purposes(at)
    def leaf(name, names):
        under = [n for n in names if n == name or n.startswith(name + ".")]
        leaves = [n for n in under if not any(m.startswith(n + ".") for m in names)]
        return rng.choice(leaves or under or names)
    q = {"category": leaf(rng.choice(e["categories"]), cats),
         "purpose": leaf(rng.choice(e["purposes"]), purps), "at": at,
         "subjects": [e["subject"]] if "subject" in e else rng.sample([f"u{i}" for i in range(12)], 1),
         "account": e.get("account") or (f"a{rng.randrange(4)}" if rng.random() < 0.5 else None)}
    if rng.random() < 0.3:  # and someone else, who may never have chosen
        q["subjects"].append(rng.choice(["u12", "u13", f"u{rng.randrange(12)}"]))
    return q


def questions(rng, ledger, n, events):
    import datetime as dt
    out = [about_an_event(rng, ledger, events) for _ in range(n // 2)]
    n -= len(out)
    subjects = [f"u{i}" for i in range(14)]  # u12, u13 never chose anything
    accounts = [f"a{i}" for i in range(5)]
    for _ in range(n):
        at = None
        if rng.random() < 0.5:  # a past time: a third of them under the first version
            days = rng.random() * 1100 if rng.random() < 0.66 else 14 + 4 * rng.random()
            t = dt.datetime(2023, 7, 24, tzinfo=dt.timezone.utc) + dt.timedelta(days=days)
            at = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            cats, purps = ledger.categories(at), ledger.purposes(at)
        except Exception:  # before any terms: any names, the answer is an error
            cats, purps = ["content.chat"], ["ai_training.first_party"]
        q = {"category": "content.chta" if rng.random() < 0.05 else rng.choice(cats),
             "purpose": rng.choice([p for p in CHOICE_PURPOSES if p in purps]
                                   if rng.random() < 0.6 else purps),
             "subjects": rng.sample(subjects, rng.choice([0, 1, 1, 1, 2])),
             "account": rng.choice(accounts) if rng.random() < 0.5 else None,
             "at": at}
        out.append(q)
    return out


def check_cli(data, q):
    args = ["check", "--data", data, "--json", "--category", q["category"], "--purpose", q["purpose"]]
    for s in q["subjects"]:
        args += ["--subject", s]
    if q["account"]:
        args += ["--account", q["account"]]
    if q["at"]:
        args += ["--at", q["at"]]
    r = run(*args, check=False)
    if r.returncode == 2:
        return None, r.stderr.strip()
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout), None


def comparable(d):
    d = dict(d)
    d.pop("at")  # "now" differs by the time between the two calls when no time is asked
    return d


@pytest.mark.parametrize("source", ["snapshot", "ledger"])
def test_decide_equals_assent_check(assent_module, history, source):
    assent = assent_module
    src = (assent.Snapshot(str(history["snapshot"])) if source == "snapshot"
           else assent.Ledger.open(str(history["data"])))
    ledger = assent.Ledger.open(str(history["data"]))
    rng = random.Random(7)  # the same questions of both sources
    seen = {"allow": 0, "deny": 0, "error": 0}
    reasons = set()
    for q in questions(rng, ledger, 160, history["events"]):
        want, err = check_cli(history["data"], q)
        if err is not None:
            with pytest.raises(assent.Error) as e:
                src.decide(q["category"], q["purpose"], q["subjects"], q["account"], q["at"])
            assert str(e.value) in err, (q, str(e.value), err)
            seen["error"] += 1
            continue
        got = src.decide(q["category"], q["purpose"], q["subjects"], q["account"], q["at"])
        assert comparable(got.to_dict()) == comparable(want), q
        assert bool(got) == (want["decision"] == "allow")
        assert (got.reason, got.rule, got.position) == (want["reason"], want.get("rule"), want["position"])
        seen[want["decision"]] += 1
        reasons.add(want["reason"])
    # The history is rich enough to mean something.
    assert seen["allow"] > 10 and seen["deny"] > 10 and seen["error"] > 0, seen
    assert {"consented", "withdrawn", "no-consent", "prohibited"} <= reasons, reasons
    assert reasons & {"stale", "expired"}, reasons


def test_decide_many_equals_decide(assent_module, history):
    assent = assent_module
    snap = assent.Snapshot(str(history["snapshot"]))
    rng = random.Random(9)
    total = 0
    for purpose in ["ai_training.first_party", "product_development.quality_review", "marketing",
                    "service.delivery"]:
        for at in [None, "2023-08-09T12:00:00Z", "2024-03-01T00:00:00Z"]:
            cats = snap.categories(at)
            rows = [(rng.choice(cats), rng.sample([f"u{i}" for i in range(14)], rng.choice([0, 1, 2])),
                     rng.choice([None, None, "a1", "a3", "a7"])) for _ in range(300)]
            if purpose not in snap.purposes(at):
                with pytest.raises(assent.InvalidArgument, match="unknown purpose"):
                    snap.decide_many(purpose, [r[0] for r in rows], [r[1] for r in rows], at=at)
                continue
            mask, reasons = snap.decide_many(purpose, [r[0] for r in rows], [r[1] for r in rows],
                                             [r[2] for r in rows], at=at)
            assert mask.dtype == np.bool_ and mask.shape == (300,)
            for (c, s, a), m, why in zip(rows, mask, reasons):
                d = snap.decide(c, purpose, s, a, at)
                assert (bool(m), why) == (d.allow, d.reason), (c, purpose, s, a, at)
                total += 1
    assert total >= 2400


def test_decide_many_takes_numpy_and_pandas_columns(assent_module, history):
    import pandas as pd
    assent = assent_module
    snap = assent.Snapshot(str(history["snapshot"]))
    df = pd.DataFrame({"category": ["service_generated.telemetry", "content.chat"] * 50,
                       "subjects": [[f"u{i % 32}"] for i in range(100)],
                       "account": [None if i % 3 else f"a{i % 8}" for i in range(100)]})
    by_series = snap.decide_many("ai_training.first_party", df["category"], df["subjects"], df["account"])
    by_numpy = snap.decide_many("ai_training.first_party", df["category"].to_numpy(),
                                df["subjects"].to_numpy(), df["account"].to_numpy())
    by_list = snap.decide_many("ai_training.first_party", list(df["category"]),
                               list(df["subjects"]), list(df["account"]))
    for a, b in [(by_series, by_numpy), (by_series, by_list)]:
        assert (a[0] == b[0]).all() and list(a[1]) == list(b[1])
    # One category for every row; one subject per row as a plain str.
    m1, _ = snap.decide_many("ai_training.first_party", "service_generated.telemetry",
                             [f"u{i % 32}" for i in range(100)])
    m2, _ = snap.decide_many("ai_training.first_party", ["service_generated.telemetry"] * 100,
                             [[f"u{i % 32}"] for i in range(100)])
    assert (m1 == m2).all()


def test_decision_object(assent_module, history):
    assent = assent_module
    snap = assent.Snapshot(str(history["snapshot"]))
    d = snap.decide("content.chat", "service.delivery")
    assert d and d.allow and d.reason == "necessary" and d.basis == "necessary"
    assert d.rule and d.clauses and d.terms.startswith("example-meetings@")
    assert d.to_dict()["decision"] == "allow" and d.position == snap.position
    d = snap.decide("content.chat", "ai_training.first_party", subjects=["u1"])
    assert not d and d.reason == "prohibited"
    d = snap.decide("service_generated.telemetry", "ai_training.first_party", subjects=["u1", "u2"])
    assert [p["subject"] for p in d.parties] == ["u1", "u2"]


def test_errors_are_typed_with_the_clis_messages(assent_module, history):
    assent = assent_module
    snap = assent.Snapshot(str(history["snapshot"]))
    with pytest.raises(assent.InvalidArgument, match=r"did you mean 'content.chat'") as e:
        snap.decide("content.chta", "service.delivery")
    assert isinstance(e.value, ValueError) and isinstance(e.value, assent.Error)
    assert e.value.code == "invalid_argument"
    with pytest.raises(assent.InvalidArgument, match="unknown purpose"):
        snap.decide("content.chat", "ai_trainig")
    with pytest.raises(assent.FailedPrecondition, match="no terms are in effect"):
        snap.decide("content.chat", "service.delivery", at="2001-01-01T00:00:00Z")
    with pytest.raises(assent.InvalidArgument, match="at:"):
        snap.decide("content.chat", "service.delivery", at="yesterday")
    import datetime as dt
    with pytest.raises(assent.InvalidArgument, match="naive datetime"):
        snap.decide("content.chat", "service.delivery", at=dt.datetime(2024, 1, 1))
    aware = snap.decide("content.chat", "service.delivery", at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    assert aware.at == "2024-01-01T00:00:00Z"
    with pytest.raises(assent.InvalidArgument, match="row 1: unknown category 'content.chta'"):
        snap.decide_many("service.delivery", ["content.chat", "content.chta"], [[], []])
    mask, reasons = snap.decide_many("service.delivery", ["content.chat", "content.chta"], [[], []],
                                     errors="deny")
    assert list(mask) == [True, False] and list(reasons) == ["necessary", "unknown-category"]
    with pytest.raises(assent.InvalidArgument, match="'subjects' has 1 values for 2 rows"):
        snap.decide_many("service.delivery", ["content.chat", "content.chat"], [[]])
    with pytest.raises(assent.InvalidArgument, match="row 0 of 'subjects'"):
        snap.decide_many("service.delivery", ["content.chat"], [[3.5]])
    with pytest.raises(assent.InvalidArgument, match="subjects: an id must be a str"):
        snap.decide("content.chat", "service.delivery", subjects=[None])
    with pytest.raises(assent.InvalidArgument, match="category must be a str"):
        snap.decide(None, "service.delivery")
    assert snap.decide("content.chat", "service.delivery", subjects=[7], account=3).parties == \
        snap.decide("content.chat", "service.delivery", subjects=["7"], account="3").parties
    with pytest.raises(assent.NotFound):
        assent.Snapshot(str(history["dir"] / "missing.snap"))
    with pytest.raises(assent.NotFound, match="no ledger"):
        assent.Ledger.open(str(history["dir"] / "nothing-here"))


def test_paths_pickling_and_errors_across_processes(assent_module, history):
    import pathlib
    import pickle
    assent = assent_module
    snap = assent.Snapshot(pathlib.Path(history["snapshot"]))
    ledger = assent.Ledger.open(pathlib.Path(history["data"]))
    assert snap.position == ledger.position
    again = pickle.loads(pickle.dumps(snap))  # by path: loaded (and checked) again
    assert again.sha256 == snap.sha256 and again.position == snap.position
    with pytest.raises(assent.InvalidArgument) as e:
        snap.decide("content.chta", "service.delivery")
    back = pickle.loads(pickle.dumps(e.value))  # as a Dask worker's error reaches the client
    assert type(back) is assent.InvalidArgument and str(back) == str(e.value)
    with pytest.raises(assent.InvalidArgument, match="give a file path"):
        assent.Snapshot(42)

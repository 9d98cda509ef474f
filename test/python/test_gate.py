"""The gate from Python keeps exactly what `assent filter` keeps, in the same order, with the
same report: on a pandas DataFrame, on a real distributed.LocalCluster with two worker
processes, from JSON Lines files on the cluster, and in a PyTorch DataLoader with two
workers."""

import gzip
import json
import os

import pandas as pd
import pytest

from conftest import run

PURPOSE = "ai_training.first_party"


def read_manifest(path):
    return pd.read_json(path, lines=True, dtype=False)


def cli_ids(path):
    with open(path) as f:
        return [json.loads(line)["id"] for line in f]


def without_files(report):
    r = dict(report)
    for k in ("input_sha256", "output_sha256", "seconds", "partitions", "files", "shards"):
        r.pop(k, None)
    return r


def test_pandas_filter_equals_the_cli(assent_module, corpus):
    import assent.pandas
    df = read_manifest(corpus["manifest"])
    assert len(df) == 200_000
    kept, report = assent.pandas.filter(df, str(corpus["snapshot"]), PURPOSE)
    assert list(kept["id"]) == cli_ids(corpus["kept"])
    assert without_files(report) == without_files(corpus["report"])
    assert 0 < report["kept"] < report["items"]
    # The kept rows are the DataFrame's own rows, index and all.
    assert kept.index.equals(df.index[df["id"].isin(set(kept["id"]))])


def test_dask_filter_on_a_local_cluster_equals_the_cli(assent_module, corpus, tmp_path):
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    import assent.dask
    df = read_manifest(corpus["manifest"])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      worker_dashboard_address=None) as cluster, Client(cluster) as client:
        ddf = dd.from_pandas(df, npartitions=8)
        kept, report = assent.dask.filter(ddf, str(corpus["snapshot"]), PURPOSE)
        assert list(kept.compute()["id"]) == cli_ids(corpus["kept"])
        assert without_files(report) == without_files(corpus["report"])
        assert report["partitions"] == 8
        # Both workers took part, each loading the snapshot itself.
        loaded = client.run(lambda: len(__import__("assent._gate")._gate._cache))
        assert sorted(loaded.values()) == [1, 1]

        # JSON Lines partitions straight into the C++ gate, one output per input.
        lines = corpus["manifest"].read_text().splitlines(keepends=True)
        parts = []
        for i in range(4):
            p = tmp_path / f"part-{i}.jsonl.gz" if i % 2 else tmp_path / f"part-{i}.jsonl"
            chunk = "".join(lines[i * 50_000:(i + 1) * 50_000]).encode()
            p.write_bytes(gzip.compress(chunk) if i % 2 else chunk)
            parts.append(str(p))
        out = tmp_path / "kept"
        out.mkdir()
        total = assent.dask.filter_jsonl(parts, str(corpus["snapshot"]), PURPOSE, str(out))
        ids = []
        for p in parts:
            o = out / os.path.basename(p)
            data = gzip.decompress(o.read_bytes()) if p.endswith(".gz") else o.read_bytes()
            ids += [json.loads(line)["id"] for line in data.decode().splitlines()]
        assert ids == cli_ids(corpus["kept"])
        assert without_files(total) == without_files(corpus["report"])
        assert [f["items"] for f in total["files"]] == [50_000] * 4


def test_signals_and_malformed_rows_as_the_cli(assent_module, corpus, tmp_path):
    import assent.pandas
    items = [
        {"id": "s1", "category": "service_generated.telemetry", "subjects": ["u1"], "account": "acct1"},
        {"id": "s2", "category": "service_generated.telemetry", "subjects": ["u2"], "account": "acct2",
         "content_usage": "train-ai=n"},
        {"id": "s3", "category": "service_generated.telemetry", "subjects": ["u3"], "account": "acct3",
         "tdm_reservation": 1},
        {"id": "s4", "category": "service_generated.telemetry", "subjects": ["u4"], "account": "acct4",
         "c2pa_training": {"cawg.ai_training": {"use": "notAllowed"}}},
        {"id": "s5", "category": "service_generated.telemetry", "subjects": ["u5"], "account": "acct5",
         "content_signal": "search=yes, ai-train=no"},
        {"id": "s6", "category": "service_generated.telemetry", "subjects": ["u6"]},
        {"id": "s7", "category": "content.chta", "subjects": ["u7"]},
        {"id": "s8", "category": 5, "subjects": ["u8"]},
        {"id": "s9", "category": "service_generated.diagnostics", "subjects": [" "]},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(i) + "\n" for i in items))
    run("filter", "--snapshot", corpus["snapshot"], "--purpose", PURPOSE, "--in", manifest,
        "--out", tmp_path / "k.jsonl", "--report", tmp_path / "r.json", "--skip-malformed")
    want = json.loads((tmp_path / "r.json").read_text())
    df = pd.DataFrame(items)
    kept, report = assent.pandas.filter(df, str(corpus["snapshot"]), PURPOSE, skip_malformed=True)
    assert list(kept["id"]) == cli_ids(tmp_path / "k.jsonl")
    assert without_files(report) == without_files(want)
    assert report["excluded_by_signal"] == {"c2pa": 1, "content-signal": 1, "content-usage": 1, "tdmrep": 1}
    assert report["malformed"] == 2
    # Without skip_malformed: the CLI's refusal, said of the row.
    with pytest.raises(assent_module.InvalidArgument, match=r"row 7: .*skip_malformed=True"):
        assent.pandas.filter(df, str(corpus["snapshot"]), PURPOSE)
    # signals=None reads none; other column names map onto the fields.
    _, plain = assent.pandas.filter(df, str(corpus["snapshot"]), PURPOSE, skip_malformed=True, signals=None)
    assert "excluded_by_signal" not in plain
    renamed = df.rename(columns={"subjects": "user_ids", "content_usage": "aipref"})
    k2, r2 = assent.pandas.filter(renamed, str(corpus["snapshot"]), PURPOSE, subjects="user_ids",
                                  signals={"content_usage": "aipref", "tdm_reservation": "tdm_reservation",
                                           "c2pa_training": "c2pa_training", "content_signal": "content_signal"},
                                  skip_malformed=True)
    assert list(k2["id"]) == list(kept["id"]) and r2["excluded_by_signal"] == report["excluded_by_signal"]
    with pytest.raises(assent_module.InvalidArgument, match="did you mean 'user_ids'"):
        assent.pandas.filter(renamed, str(corpus["snapshot"]), PURPOSE, subjects="user_id")


def test_a_purpose_with_sub_purposes_is_refused_as_by_the_cli(assent_module, corpus):
    import assent.pandas
    df = read_manifest(corpus["manifest"]).head(10)
    with pytest.raises(assent_module.InvalidArgument, match="has sub-purposes"):
        assent.pandas.filter(df, str(corpus["snapshot"]), "ai_training")


class _Items:
    """A plain IterableDataset of dict items, not aware of DataLoader workers."""

    def __init__(self, path):
        self.path = str(path)

    def __iter__(self):
        with open(self.path) as f:
            for line in f:
                yield json.loads(line)


def test_torch_consent_filter_with_two_workers(assent_module, corpus):
    import torch.utils.data as data
    from assent.torch import ConsentFilter

    class Items(_Items, data.IterableDataset):
        pass

    want = sorted(cli_ids(corpus["kept"]))
    loader = data.DataLoader(ConsentFilter(Items(corpus["manifest"]), str(corpus["snapshot"]), PURPOSE),
                             batch_size=None, num_workers=2)
    got = [item["id"] for item in loader]
    assert len(got) == len(want) and sorted(got) == want

    # A map-style dataset (a list) is split by index; one that splits itself is left alone.
    first = [json.loads(line) for line in corpus["manifest"].read_text().splitlines()[:5000]]
    allowed = set(cli_ids(corpus["kept"]))
    loader = data.DataLoader(ConsentFilter(first, str(corpus["snapshot"]), PURPOSE, batch_size=100),
                             batch_size=None, num_workers=2)
    assert sorted(i["id"] for i in loader) == sorted(i["id"] for i in first if i["id"] in allowed)

    class SplitsItself(data.IterableDataset):
        def __iter__(self):
            info = data.get_worker_info()
            return iter(first[info.id::info.num_workers] if info else first)

    loader = data.DataLoader(ConsentFilter(SplitsItself(), str(corpus["snapshot"]), PURPOSE,
                                           split_by_worker=False), batch_size=None, num_workers=2)
    assert sorted(i["id"] for i in loader) == sorted(i["id"] for i in first if i["id"] in allowed)

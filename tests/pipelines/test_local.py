"""The local target's pieces that run before the pipeline: the source's fingerprint (components.common.fingerprint)."""

import os

from components.common import fingerprint


def test_the_fingerprint_follows_the_files_under_the_source(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"1")
    (tmp_path / "b.csv").write_text("a\n1\n")
    first = {source: fingerprint.of_source(str(tmp_path / source)) for source in ("", "a", "b.csv", "*.csv")}
    assert len({first[""], first["a"], first["b.csv"]}) == 3
    assert all(len(d) == 16 for d in first.values())
    assert first["*.csv"] == first["b.csv"]  # the same one file
    assert fingerprint.of_source(str(tmp_path / "a")) == first["a"]  # nothing changed
    os.utime(tmp_path / "a" / "x.png", ns=(1, 1))
    assert fingerprint.of_source(str(tmp_path / "a")) != first["a"]
    assert fingerprint.of_source(str(tmp_path)) != first[""]
    assert fingerprint.of_source(str(tmp_path / "b.csv")) == \
        first["b.csv"]
    (tmp_path / "c.csv").write_text("a\n2\n")
    assert fingerprint.of_source(str(tmp_path / "*.csv")) != first["*.csv"]


def test_a_templated_source_has_no_fingerprint(tmp_path):
    assert fingerprint.of_source(str(tmp_path / "span-{SPAN}")) == ""
    assert fingerprint.of_source("bq://acme.sales.orders") == ""
    assert fingerprint.of_source("", "SELECT 1") == ""

"""KG loaders: TSV format errors, PyKEEN-wheel datasets, dataset directories, download from a file URL, unseen
entities."""
import io
import os
import tarfile

import pytest
import torch

from conftest import shared_path
from hardneg.data import download_kg, load_dataset, load_kg, pykeen_dataset_dir, resolve_dataset, unseen_mask


def write(d, name, text):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)


def test_tsv_round_trip_and_ids(tmp_path):
    write(tmp_path, "train.txt", "a\tr\tb\nb\tr\tc\n")
    write(tmp_path, "valid.txt", "a\tr\tc\n")
    write(tmp_path, "test.txt", "c\ts\td\n")
    kg = load_kg(str(tmp_path))
    assert kg.entities == ["a", "b", "c", "d"] and kg.relations == ["r", "s"]
    assert kg.train.tolist() == [[0, 0, 1], [1, 0, 2]] and kg.test.tolist() == [[2, 1, 3]]
    # d and s never occur in train: the test triple is unseen
    assert unseen_mask(kg, kg.test).tolist() == [True] and unseen_mask(kg, kg.valid).tolist() == [False]


def test_malformed_line_names_file_and_line(tmp_path):
    write(tmp_path, "train.txt", "a\tr\tb\nb r c\n")
    write(tmp_path, "valid.txt", "")
    write(tmp_path, "test.txt", "")
    with pytest.raises(ValueError, match=r"train\.txt:2: expected 'head<TAB>relation<TAB>tail'"):
        load_kg(str(tmp_path))


def test_missing_dataset():
    with pytest.raises(ValueError, match="dataset directory not found"):
        load_dataset("/no/such/dir")
    with pytest.raises(ValueError, match="not found.*known names"):
        load_dataset("freebase-huge")


def test_pykeen_wheel_datasets():
    pytest.importorskip("pykeen", reason="PyKEEN not installed")
    for name, (E, R, n) in {"umls": (135, 46, 5216), "nations": (14, 55, 1592), "kinships": (104, 25, 8544)}.items():
        d = pykeen_dataset_dir(name)
        assert d and "pykeen" in d
        kg = load_dataset(name)
        assert (kg.num_entities, kg.num_relations, kg.train.shape[0]) == (E, R, n)


@pytest.mark.parametrize("name,counts", [("wn18rr", (40943, 11, 86835)), ("nell-995", (75492, 200, 149678)),
                                         ("codex-s", (2034, 42, 32888))])
def test_shared_dataset_dirs(name, counts):
    shared_path("data", "kg")
    kg = load_dataset(name)
    assert (kg.num_entities, kg.num_relations, kg.train.shape[0]) == counts
    if name == "nell-995":  # MANIFEST: 1,159 test triples hold an entity never seen in train
        assert int(unseen_mask(kg, kg.test).sum()) == 1159


def test_download_from_file_url(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write(src, "train.txt", "a\tr\tb\n")
    write(src, "valid.txt", "b\tr\ta\n")
    write(src, "test.txt", "a\tr\ta\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in ("train.txt", "valid.txt", "test.txt"):
            tar.add(src / f, arcname=f"WN18RR/{f}")
        info = tarfile.TarInfo("../../evil.txt")  # must be ignored
        data = b"x"
        info.size = 1
        tar.addfile(info, io.BytesIO(data))
    arc = tmp_path / "WN18RR.tar.gz"
    arc.write_bytes(buf.getvalue())
    dest = download_kg("wn18rr", str(tmp_path / "root"), url=arc.as_uri())
    assert sorted(os.listdir(dest)) == ["test.txt", "train.txt", "valid.txt"]
    assert not (tmp_path / "evil.txt").exists()
    assert load_kg(dest).train.tolist() == [[0, 0, 1]]
    with pytest.raises(ValueError, match="no known URL"):
        download_kg("umls-mirror", str(tmp_path))

"""Every user error from the CLI is one line on stderr, without a traceback, with exit status 2; the output
path and the checkpoint directory are checked before anything trains."""
import os
import pytest

from hardneg import cli

NATIONS = ["--dataset", "nations", "--epochs", "1", "--dim", "8", "--no-progress"]


def _cases(tmp):
    bad_yaml = os.path.join(tmp, "bad.yaml")
    with open(bad_yaml, "w") as f:
        f.write("# a recipe\ntask: kg\ndataset: nations\nepochs: [1\n")
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    for s in ("train", "valid", "test"):
        open(os.path.join(empty, f"{s}.txt"), "w").close()
    binary = os.path.join(tmp, "binary")
    os.makedirs(binary)
    for s in ("train", "valid", "test"):
        with open(os.path.join(binary, f"{s}.txt"), "wb") as f:
            f.write(b"a\tr\tb\nc\xff\tr\td\n")
    ckpt = os.path.join(tmp, "ckpt")
    os.makedirs(ckpt)
    with open(os.path.join(ckpt, "checkpoint.pt"), "wb") as f:
        f.write(b"not a checkpoint")
    return [
        ("unwritable output", ["train", *NATIONS, "--output", "/proc/hardneg-nope/r.json"], "is not writable"),
        ("unwritable checkpoint dir", ["train", *NATIONS, "--checkpoint-dir", "/proc/hardneg-nope"],
         "checkpoint_dir"),
        ("corrupt checkpoint", ["train", *NATIONS, "--checkpoint-dir", ckpt, "--resume"], "checkpoint.pt"),
        ("yaml error names file and line", ["train", "--config", bad_yaml], "bad.yaml:5"),
        ("empty dataset names the file", ["train", "--dataset", empty, "--epochs", "1"], "train.txt' is empty"),
        ("undecodable bytes name file and line", ["train", "--dataset", binary, "--epochs", "1"], "train.txt:2"),
        ("negative epochs", ["train", "--dataset", "nations", "--epochs", "-1"], "'epochs'"),
        ("zero batch size", ["train", "--dataset", "nations", "--batch-size", "0"], "'batch_size'"),
        ("sampler option that would be ignored", ["train", *NATIONS, "--sampler", "bernoulli", "--set",
                                                  "sampler_options={side: tail}"], "'side'"),
        ("bad sampler temperature", ["train", *NATIONS, "--sampler", "score", "--set",
                                     "sampler_options={temperature: -1}"], "'temperature'"),
    ]


def test_user_errors_are_one_line_with_status_2(tmp_path, capsys):
    for name, argv, fragment in _cases(str(tmp_path)):
        rc = cli.main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2, f"{name}: exit status {rc}, stderr {err!r}"
        assert len(err.splitlines()) == 1 and "Traceback" not in err, f"{name}: {err!r}"
        assert fragment in err, f"{name}: {fragment!r} not in {err!r}"
    assert not os.path.exists(os.path.join(str(tmp_path), "ckpt", "checkpoint.prev.pt"))


def test_unwritable_output_is_refused_before_training(tmp_path, capsys):
    ck = tmp_path / "ck"
    rc = cli.main(["train", "--dataset", "nations", "--epochs", "30", "--no-progress", "--checkpoint-dir", str(ck),
                   "--checkpoint-every", "1", "--output", "/proc/hardneg-nope/r.json"])
    out = capsys.readouterr()
    assert rc == 2 and "/proc/hardneg-nope/r.json" in out.err and "Traceback" not in out.err
    assert "epoch" not in out.out.lower()  # nothing trained
    assert not (ck / "checkpoint.pt").exists()

import subprocess
import sys

from hardneg import cli


def test_demo_runs_end_to_end_small(capsys):
    rc = cli.main(["demo", "--dim", "16", "-k", "8", "--big", "32", "3000", "8", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "known positives returned: 0" in out and "known triples among them: 0" in out


def test_info_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "hardneg", "info"], capture_output=True, text=True, check=True).stdout
    assert "topk_mine" in out and "corrupt" in out and "temporal_neighbors" in out


def test_train_tiny_end_to_end(tmp_path, capsys):
    import json

    out = tmp_path / "r.json"
    rc = cli.main(["train", "--dataset", "nations", "--epochs", "2", "--dim", "8", "--sampler", "topk",
                   "--num-negatives", "4", "--eval-every", "1", "--output", str(out), "--no-progress"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["config"]["sampler"] == "topk" and d["epochs_trained"] == 2
    assert set(d["test"]) >= {"mrr", "hits@1", "hits@3", "hits@10", "mr"}
    assert "MRR" in capsys.readouterr().out


def test_train_from_recipe_and_set(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dataset: nations\nmodel: complex\ndim: 8\nepochs: 1\neval_every: 0\nsampler: uniform\n")
    out = tmp_path / "o.json"
    rc = cli.main(["train", "--config", str(recipe), "--set", "num_negatives=3", "--set", "loss_options={margin: 1.0}",
                   "--loss", "margin", "--output", str(out), "--no-progress"])
    import json

    d = json.loads(out.read_text())
    assert rc == 0 and d["config"]["model"] == "complex" and d["config"]["num_negatives"] == 3
    assert d["config"]["loss_options"] == {"margin": 1.0}


def test_shipped_recipes_are_valid():
    from hardneg.training import TrainConfig

    from hardneg.tasks import recipes

    names = list(recipes())
    assert {"umls", "nations", "kinships", "wn18rr", "nell-995", "codex-s"} <= set(names)
    for n in names:
        d = cli.load_recipe(n)
        for k in cli.RECIPE_KEYS:
            d.pop(k, None)
        TrainConfig.from_dict(d)


def test_compare_prints_one_table(capsys):
    rc = cli.main(["compare", "--dataset", "nations", "--epochs", "1", "--dim", "8", "--eval-every", "0",
                   "--samplers", "uniform,topk,nscaching", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    for name in ("uniform", "topk", "nscaching"):
        assert f"\n{name}" in out


def test_cli_errors(capsys):
    assert cli.main(["train", "--model", "conve"]) == 2
    assert "unknown model 'conve'" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", "/no/such/dir"]) == 2
    assert "dataset directory not found" in capsys.readouterr().err
    assert cli.main(["compare", "--samplers", "uniform,hard"]) == 2
    assert "unknown sampler(s) ['hard']" in capsys.readouterr().err
    assert cli.main(["train", "--config", "no-such-recipe"]) == 2
    assert "shipped recipes" in capsys.readouterr().err


def test_python_m_hardneg_train_help():
    out = subprocess.run([sys.executable, "-m", "hardneg", "train", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--sampler" in out and "--resume" in out


def test_help_of_a_field_shared_by_tasks_names_each_meaning():
    """A field two tasks share under one flag (--dropout, --mrr-negatives) shows each task's help, not the first's."""
    table = cli.option_table()
    mrr = table["mrr_negatives"]
    assert set(mrr["helps"]) == {"temporal", "linkpred"}
    assert mrr["help"].startswith("temporal: ") and "; linkpred: " in mrr["help"]
    assert table["lr"]["help"] == "learning rate"  # one text where the tasks agree


def test_compare_from_the_main_job_recipe(capsys):
    """The main job's recipe (topk with pool_size) also drives a uniform run: options stay with their sampler."""
    rc = cli.main(["compare", "--config", "umls", "--epochs", "1", "--dim", "8", "--eval-every", "0", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "\nuniform" in out and "\ntopk" in out


def test_train_saves_a_run_folder_and_export_writes_each_format(tmp_path, capsys):
    import json

    import numpy as np
    import torch

    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "nations", "--epochs", "1", "--dim", "4", "--eval-every", "0",
                     "--output", str(run), "--no-progress"]) == 0
    d = json.loads((run / "results.json").read_text())
    assert d["files"]["embeddings"].endswith("embeddings.pt")
    emb = torch.load(run / "embeddings.pt")
    assert emb["entity"]["weight"].shape[0] == len(emb["entity"]["names"]) == 14
    for fmt in ("pt", "npy", "tsv"):
        assert cli.main(["export", str(run), "--format", fmt]) == 0
    out = run / "export-npy"
    assert np.load(out / "entity.npy").shape == tuple(emb["entity"]["weight"].shape)
    assert (out / "entity_to_id.tsv").read_text().splitlines()[0] == "id\tlabel"
    meta = (run / "export-tsv" / "relation_metadata.tsv").read_text().splitlines()
    assert meta == emb["relation"]["names"]
    capsys.readouterr()
    assert cli.main(["export", str(tmp_path / "nothing")]) == 2
    assert "embeddings.pt' not found" in capsys.readouterr().err


def test_the_main_job_keeps_its_identity_with_output_and_seed(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "_compare", lambda d, names, seeds, output, progress, per=None: calls.append(
        (d["dataset"], names, seeds, output)))
    assert cli.main(["train", "--output", str(tmp_path / "o"), "--no-progress", "--seed", "3"]) == 0
    assert calls == [(cli.load_recipe(cli.MAIN_JOB)["dataset"], cli.load_recipe(cli.MAIN_JOB)["compare"], [3],
                      str(tmp_path / "o"))]


def test_dataset_without_config_uses_its_recipe(capsys, tmp_path):
    assert cli.main(["train", "--dataset", "nations", "--epochs", "1", "--eval-every", "0", "--dim", "4",
                     "--output", str(tmp_path / "r"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "using the shipped recipe 'nations'" in out and "complex on nations" in out


def test_listing_commands(capsys):
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "umls" in out and "kg" in out
    assert cli.main(["samplers"]) == 0
    out = capsys.readouterr().out
    assert "topk" in out and "pool_size" in out
    assert cli.main(["recipes"]) == 0
    assert "umls" in capsys.readouterr().out


def test_help_does_not_import_torch():
    code = "import sys; from hardneg import cli; cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_missing_optional_dependency_is_one_line_naming_the_extra(monkeypatch, capsys):
    from hardneg import cli

    def boom(args):
        raise ModuleNotFoundError("No module named 'torch_geometric'", name="torch_geometric")

    monkeypatch.setattr(cli, "cmd_datasets", boom)
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["datasets"].set_defaults(func=boom)
    assert cli.main(["datasets"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hardneg datasets: error: No module named 'torch_geometric' (pip install 'hardneg[pyg]')"
    assert "\n" not in err


def test_another_sampler_drops_the_recipes_sampler_options():
    from hardneg import cli

    parser = cli.build_parser()
    said = []
    args = parser.parse_args(["train", "--config", "umls", "--sampler", "score"])
    d, _ = cli.config_from_args(args, log=said.append)
    assert d["sampler"] == "score" and "sampler_options" not in d
    assert "pool_size" in said[-1] and "dropped" in said[-1]
    args = parser.parse_args(["train", "--config", "umls", "--sampler", "nmiss", "--sampler-options", "{pool_size: 8}"])
    d, _ = cli.config_from_args(args, log=said.append)
    assert d["sampler_options"] == {"pool_size": 8}
    d, _ = cli.config_from_args(parser.parse_args(["train", "--config", "umls"]), log=said.append)
    assert d["sampler_options"] == {"pool_size": 64}


def test_none_on_the_command_line_overrides_the_recipe():
    """``--node-embedding none`` is that option's value (a str field with a str default keeps the text); for a
    field whose default is None, ``none`` / ``null`` sets None over the recipe's value. Neither is dropped as "not
    given" (it was: the recipe's value silently stayed)."""
    from hardneg import cli

    parser = cli.build_parser()

    def opts(*argv):
        return cli.config_from_args(parser.parse_args(["train", *argv]), log=lambda *a: None)[0]

    assert opts("--config", "citeseer-seal")["node_embedding"] == "gcn"
    assert opts("--config", "citeseer-seal", "--node-embedding", "none")["node_embedding"] == "none"
    assert opts("--config", "citeseer-seal", "--node-embedding", "learn")["node_embedding"] == "learn"
    assert opts("--config", "nations")["regularizer"] == "n3"
    d = opts("--config", "nations", "--regularizer", "none", "--checkpoint-dir", "null")
    assert d["regularizer"] is None and d["checkpoint_dir"] is None
    assert "node_embedding" not in opts("--config", "nations")


def test_compare_takes_samplers_only(capsys):
    from hardneg import cli

    assert cli.main(["compare", "--sampler", "score"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--samplers a,b" in err and "--sampler score" in err and "\n" not in err


def test_bare_compare_uses_the_main_job_recipe(monkeypatch, capsys):
    from hardneg import cli

    seen = {}
    monkeypatch.setattr(cli, "_compare", lambda d, names, seeds, *a: seen.update(d=d, names=names, seeds=seeds))
    assert cli.main(["compare", "--no-progress"]) == 0
    assert seen["d"]["dataset"] == "umls" and seen["d"]["model"] == "complex" and seen["names"] == ["uniform", "topk"]
    assert "main job's recipe 'umls'" in capsys.readouterr().out


def test_compare_sampler_options_go_to_the_one_sampler_compared(monkeypatch, capsys):
    """An explicit --sampler-options is never silently dropped: it belongs to the recipe's sampler when that is
    compared, else to the single sampler of --samplers (over the recipe's per_sampler options), else an error."""
    from hardneg import cli

    seen = {}
    monkeypatch.setattr(cli, "_compare", lambda d, names, seeds, out, progress, per=None: seen.update(
        d=d, names=names, per=per))
    # citeseer-gcn: the recipe's sampler is mebns, and per_sampler gives dns num_candidates 16
    assert cli.main(["compare", "--config", "citeseer-gcn", "--samplers", "dns",
                     "--sampler-options", "{num_candidates: 32}", "--no-progress"]) == 0
    assert seen["d"]["sampler"] == "dns" and seen["d"]["sampler_options"] == {"num_candidates": 32}
    assert "sampler_options" not in (seen["per"] or {}).get("dns", {})
    assert cli.main(["compare", "--config", "citeseer-gcn", "--samplers", "uniform,mebns",
                     "--sampler-options", "{num_candidates: 8}", "--no-progress"]) == 0
    assert seen["d"]["sampler"] == "mebns" and "apply to 'mebns'" in capsys.readouterr().out
    assert cli.main(["compare", "--config", "citeseer-gcn", "--samplers", "uniform,dns",
                     "--sampler-options", "{num_candidates: 16}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--sampler-options" in err and "the options of which sampler?" in err

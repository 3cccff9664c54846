"""Rec task data: LightGCN / SASRec / timestamped loading, given and leave-one-out splits, sampled candidates."""
import warnings

import pytest
import torch

from conftest import shared_path
from hardneg.tasks.rec import data as R


def lightgcn_dir(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 2 3\n2 0\n3\n")
    (tmp_path / "test.txt").write_text("0 3\n1 0 4\n2 1\n3 2\n")
    return str(tmp_path)


def seq_user(ds, u):
    indptr, items, _ = ds.sequences()
    return items[indptr[u]:indptr[u + 1]].tolist()


# ------------------------------------------------------------------------------------------------ loading
def test_lightgcn_folder_given_split_and_skipped_users(tmp_path):
    ds = R.load_dataset(lightgcn_dir(tmp_path))
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (4, 5, 11) and not ds.time_ordered
    assert seq_user(ds, 1) == [2, 3, 0, 4]  # train items, then test items, in file order
    sp = ds.split("given")
    assert sp.train.shape[0] == 6 and sp.valid.shape[0] == 0
    # user 3 has no training item: skipped, its test interaction dropped and counted
    assert sp.skipped_users.tolist() == [3] and sp.dropped_eval_interactions == 1 and sp.test.shape[0] == 4
    d = ds.describe(sp)
    assert d["split"]["skipped_users"] == 1 and d["density"] == 11 / 20 and d["split"]["evaluated_users"] == 3
    indptr, items = sp.train_csr()
    assert indptr.tolist() == [0, 3, 5, 6, 6] and items.tolist() == [0, 1, 2, 2, 3, 0]


def test_sasrec_file_leave_one_out(tmp_path):
    p = tmp_path / "seq.txt"
    p.write_text("1 5\n1 3\n1 4\n1 1\n2 2\n2 5\n3 1\n3 2\n3 3\n")
    ds = R.load_dataset(str(p))
    assert (ds.num_users, ds.num_items) == (3, 5) and ds.time is None and ds.time_ordered
    assert ds.user_ids.tolist() == [1, 2, 3] and seq_user(ds, 0) == [4, 2, 3, 0]  # 1-based ids -> id - 1
    sp = ds.split("leave_one_out")
    assert sp.test.tolist() == [[0, 0], [2, 2]] and sp.valid.tolist() == [[0, 3], [2, 1]]
    assert sp.train.tolist() == [[0, 4], [0, 2], [1, 1], [1, 4], [2, 0]]  # user 1 (2 items): all train
    assert sp.train_only_users == 1 and sp.skipped_users.numel() == 0
    indptr, items, times = sp.history("test")
    assert items[indptr[0]:indptr[1]].tolist() == [4, 2, 3] and times is None
    assert sp.history("valid")[1].tolist() == [4, 2, 1, 4, 0]
    with pytest.raises(ValueError, match="has no given train/test split"):
        ds.split("given")
    with pytest.raises(ValueError, match=r"'protocol' must be one of \['given', 'leave_one_out'\]"):
        ds.split("random")


def test_timestamped_file_orders_by_time_and_keeps_last_duplicate(tmp_path):
    p = tmp_path / "ui.csv"
    p.write_text("user,item,time\n10,7,300\n10,8,100\n10,7,50\n10,9,200\n11,8,5\n")
    with pytest.warns(UserWarning, match=r"removed 1 repeated \(user, item\) interactions, keeping the last"):
        ds = R.load_dataset(str(p))
    # user 10 in time order: 7@50, 8@100, 9@200, 7@300 -> the repeat of item 7 keeps its last time, 300
    assert seq_user(ds, 0) == [1, 2, 0] and ds.time[:3].tolist() == [100, 200, 300]
    assert ds.duplicates_removed == 1 and ds.describe()["duplicates_removed"] == 1
    sp = ds.split()
    assert sp.test.tolist() == [[0, 0]] and sp.valid.tolist() == [[0, 2]] and sp.test_time.tolist() == [300]
    _, items, times = sp.history("test")
    assert items.tolist() == [1, 2, 1] and times.tolist() == [100, 200, 5]


def test_from_interactions_checks():
    with pytest.raises(ValueError, match=r"'item' ids must be in \[0, 5\) \(got min 0, max 5\)"):
        R.RecDataset.from_interactions(torch.tensor([0, 1]), torch.tensor([0, 5]), num_items=5)
    with pytest.raises(ValueError, match=r"'user' ids must be in \[0, 1\)"):
        R.RecDataset.from_interactions(torch.tensor([0, 1]), torch.tensor([0, 1]), num_users=1)
    with pytest.raises(TypeError, match=r"'item' must be a 1-D integer tensor"):
        R.RecDataset.from_interactions(torch.tensor([0]), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="same length"):
        R.RecDataset.from_interactions(torch.tensor([0, 1]), torch.tensor([0]))
    ds = R.RecDataset.from_interactions(torch.tensor([2, 0]), torch.tensor([0, 9]), num_users=4)
    assert (ds.num_users, ds.num_items) == (4, 10)  # separate id spaces, users need not be < items
    sp = ds.split()
    assert sp.skipped_users.tolist() == [1, 3] and sp.train_only_users == 2


def test_format_errors(tmp_path):
    (tmp_path / "train.txt").write_text("0 1\n")
    with pytest.raises(ValueError, match=r"missing test.txt in"):
        R.load_dataset(str(tmp_path))
    p = tmp_path / "ui.txt"
    p.write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"a SASRec file has two columns"):
        R.load_dataset(str(p), format="sasrec")
    with pytest.raises(ValueError, match=r"'format' must be one of"):
        R.load_dataset(str(p), format="movielens")


def test_not_found():
    with pytest.raises(ValueError, match=r"rec dataset 'nope' not found \(shipped names: \['games', 'gowalla'"):
        R.load_dataset("nope")
    assert {e["name"] for e in R.available()} == set(R.SHIPPED)


# ------------------------------------------------------------------------------------------------ candidates
def synthetic(users=300, items=2000, per_user=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.arange(users).repeat_interleave(per_user)
    i = torch.randint(0, items, (u.numel(),), generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return R.RecDataset.from_interactions(u, i, torch.arange(u.numel()), num_items=items)


@pytest.mark.parametrize("k", [99, 999])
def test_eval_candidates(k):
    ds = synthetic()
    sp = ds.split()
    users, cand = sp.eval_candidates("test", num_negatives=k)
    assert cand.shape == (sp.test.shape[0], 1 + k) and torch.equal(users, sp.test[:, 0])
    assert torch.equal(cand[:, 0], sp.test[:, 1])
    srt = torch.sort(cand, 1).values
    assert not (srt[:, 1:] == srt[:, :-1]).any() and ((cand >= 0) & (cand < ds.num_items)).all()
    seen = set((ds.user * ds.num_items + ds.item).tolist())  # every interaction, of any part
    neg = (users[:, None] * ds.num_items + cand[:, 1:]).flatten().tolist()
    assert not seen & set(neg)
    assert torch.equal(cand, sp.eval_candidates("test", num_negatives=k)[1])
    assert not torch.equal(cand, sp.eval_candidates("test", num_negatives=k, seed=7)[1])
    assert not torch.equal(cand[:, 1:], sp.eval_candidates("valid", num_negatives=k)[1][:, 1:])


def test_eval_candidates_errors_and_uniformity(tmp_path):
    with pytest.raises(ValueError, match=r"need one held-out item per user \(protocol='leave_one_out'"):
        R.load_dataset(lightgcn_dir(tmp_path)).split("given").eval_candidates()
    with pytest.warns(UserWarning, match="not known to be in time order"):
        loo = R.load_dataset(lightgcn_dir(tmp_path)).split()
    with pytest.raises(ValueError, match=r"'num_negatives' must be >= 1"):
        loo.eval_candidates(num_negatives=0)
    # one user, items 0..9, interactions 0,1,2: negatives uniform over 3..9 (chi-square, fixed seed)
    ds = R.RecDataset.from_interactions(torch.zeros(3, dtype=torch.int64), torch.tensor([0, 1, 2]), num_items=10)
    sp = ds.split()
    counts = torch.zeros(10)
    for s in range(700):
        counts += torch.bincount(sp.eval_candidates(num_negatives=1, seed=s)[1][:, 1], minlength=10)
    assert counts[:3].sum() == 0
    chi2 = float(((counts[3:] - 100) ** 2 / 100).sum())
    assert chi2 < 22.46  # 6 degrees of freedom, p = 0.001
    with pytest.warns(UserWarning, match="fewer than 9 admissible negatives"):
        assert sp.eval_candidates(num_negatives=9)[1].shape == (1, 10)


# ------------------------------------------------------------------------------------------------ real data
def test_gowalla_counts():
    shared_path("data", "rec", "gowalla", "train.txt")
    ds = R.load_dataset("gowalla")
    assert (ds.num_users, ds.num_items, ds.num_interactions, ds.duplicates_removed) == (29_858, 40_981, 1_027_370, 0)
    sp = ds.split("given")
    assert (sp.train.shape[0], sp.test.shape[0], sp.skipped_users.numel()) == (810_128, 217_242, 0)
    indptr, _ = sp.train_csr()
    assert int(indptr[-1]) == 810_128


def test_games_counts_and_leave_one_out():
    shared_path("data", "rec", "sasrec-games", "Video.txt")
    ds = R.load_dataset("games")
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (31_013, 23_715, 287_107)
    sp = ds.split()
    assert sp.train_only_users == 112 and sp.test.shape[0] == sp.valid.shape[0] == 31_013 - 112
    users, cand = sp.eval_candidates(num_negatives=99)
    assert cand.shape == (31_013 - 112, 100) and (cand >= 0).all()


def test_temporal_sets_as_rec():
    shared_path("data", "temporal", "wikipedia", "wikipedia.csv")
    with pytest.warns(UserWarning, match="removed 139217 repeated"):
        ds = R.load_dataset("wikipedia-rec")
    assert (ds.num_users, ds.num_items, ds.num_interactions) == (8_227, 1_000, 18_257) and ds.time is not None
    shared_path("data", "temporal", "uci", "ml_uci.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uci = R.load_dataset("uci-rec")
    assert uci.describe()["timestamps"] and uci.time.dtype == torch.int64

"""Directions: boundaries against a float64 Newton solve, GANSpace and SeFa against numpy
eigen-decompositions, the W+ row of every modulation checked on the forward pass, files."""

import numpy as np
import pytest
import torch

from style_transformer import Generator, GeneratorConfig
from style_transformer.editing import (Direction, DirectionError, fit_boundary, ganspace, load_boundary,
                                       load_directions, save_directions, sefa, w_covariance)
from style_transformer.editing.directions import modulation_weights, style_modulations

GEN = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8))


def _data(n=400, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + 0.5
    normal = rng.normal(size=d)
    y = (x @ normal + 0.7 * rng.normal(size=n) > 0.5).astype(np.float64)
    return x, y, normal / np.linalg.norm(normal)


def test_logistic_boundary_matches_newton_solution():
    x, y, true = _data()
    normal, bias, info = fit_boundary(torch.from_numpy(x), torch.from_numpy(y), "logistic", l2=1e-2)
    w, b = _newton_logistic(x, y, 1e-2)
    np.testing.assert_allclose(normal.double().numpy(), w / np.linalg.norm(w), atol=1e-5)
    assert bias == pytest.approx(b, abs=1e-4)
    acc = ((x @ w + b > 0) == y).mean()
    assert info["accuracy"] == pytest.approx(acc) and acc > 0.8
    assert float(normal.double().numpy() @ true) > 0.95


def test_svm_boundary_and_wplus_shape():
    x, y, true = _data(d=12, seed=1)
    normal, _, info = fit_boundary(torch.from_numpy(x).reshape(-1, 3, 4), torch.from_numpy(y), "svm")
    assert normal.shape == (3, 4) and abs(normal.norm().item() - 1) < 1e-6
    assert float(normal.reshape(-1).double().numpy() @ true) > 0.95 and info["accuracy"] > 0.8
    with pytest.raises(DirectionError, match="both values"):
        fit_boundary(torch.zeros(4, 2), torch.ones(4))
    with pytest.raises(DirectionError, match="unknown boundary method"):
        fit_boundary(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), "tree")


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return Generator(GEN).eval()


def test_ganspace_matches_numpy_pca(generator):
    comps, std = ganspace(generator, n_components=3, n_samples=3000, seed=2)
    z = torch.randn(3000, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        w = generator.mapping(z).double().numpy()
    evals, evecs = np.linalg.eigh(np.cov(w, rowvar=False))
    for i in range(3):
        ref = evecs[:, -1 - i]
        assert abs(float(comps[i].double().numpy() @ ref)) > 0.999
        assert std[i].item() == pytest.approx(np.sqrt(evals[-1 - i]), rel=1e-4)


def test_w_covariance_matches_numpy(generator):
    cov = w_covariance(generator, n_samples=2000, seed=3)
    z = torch.randn(2000, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        w = generator.mapping(z).double().numpy()
    assert cov.dtype == torch.float64 and cov.shape == (16, 16)
    np.testing.assert_allclose(cov.numpy(), np.cov(w, rowvar=False), rtol=1e-6, atol=1e-9)


def test_every_modulation_reads_its_wplus_row(generator):
    rows = style_modulations(generator)
    seen = {}

    def record(row):
        def hook(mod, inp, out):
            seen[id(mod)] = (row, inp[0].clone())  # returns None: the output is kept
        return hook

    hooks = [m.register_forward_hook(record(r)) for r, mods in enumerate(rows) for m in mods]
    ws = torch.randn(2, generator.num_ws, 16)
    with torch.no_grad():
        generator.synthesis(ws)
    for h in hooks:
        h.remove()
    n_mods = sum(len(m) for m in rows)
    assert len(seen) == n_mods == 2 + len(generator.convs) + len(generator.to_rgbs)
    for r, inp in seen.values():
        torch.testing.assert_close(inp, ws[:, r])


def test_sefa_matches_numpy_svd(generator):
    dirs, evals = sefa(generator, n_components=4, layers=[0, 1, 2])
    a = modulation_weights(generator, [0, 1, 2]).double().numpy()
    a = a / np.linalg.norm(a, axis=0, keepdims=True)
    _, sing, vt = np.linalg.svd(a, full_matrices=False)
    for i in range(4):
        assert abs(float(dirs[i].double().numpy() @ vt[i])) > 0.999
        assert evals[i].item() == pytest.approx(sing[i] ** 2, rel=1e-4)


def test_apply_files_and_errors(tmp_path):
    d = Direction("Smiling", torch.ones(1, 4) / 2, "interfacegan", layers=(1, 3), info={"accuracy": 0.9})
    ws = torch.zeros(2, 5, 4)
    out = d.apply(ws, 2.0)
    assert torch.equal(out[:, 1:3], torch.ones(2, 2, 4)) and out[:, [0, 3, 4]].abs().sum() == 0
    assert torch.equal(d.apply(ws, -1.0, layers=(0, 5)), -0.5 * torch.ones(2, 5, 4))
    with pytest.raises(DirectionError, match="outside"):
        d.apply(ws, 1.0, layers=(3, 9))
    with pytest.raises(DirectionError, match="width"):
        d.apply(torch.zeros(1, 5, 3), 1.0)
    per_row = Direction("x", torch.randn(18, 4))
    assert per_row.apply(ws, 1.0).shape == ws.shape  # an 18-row boundary on 5 rows: the first 5 used
    save_directions([d, per_row], tmp_path / "dirs")
    back = load_directions(tmp_path / "dirs")
    assert set(back) == {"Smiling", "x"} and back["Smiling"].layers == (1, 3)
    assert torch.equal(back["x"].vector, per_row.vector) and back["Smiling"].info == {"accuracy": 0.9}
    np.save(tmp_path / "boundary.npy", np.ones((1, 512), dtype=np.float64))
    assert load_boundary(tmp_path / "boundary.npy").vector.shape == (1, 512)
    np.save(tmp_path / "bad.npy", np.ones((2, 3, 4)))
    with pytest.raises(DirectionError, match="expected finite floats"):
        load_boundary(tmp_path / "bad.npy")
    (tmp_path / "junk.npy").write_text("nope")
    with pytest.raises(DirectionError, match="not a readable"):
        load_boundary(tmp_path / "junk.npy")
    with pytest.raises(DirectionError, match="not a directions folder"):
        load_directions(tmp_path)


def test_editing_folder_row_ranges_round_trip_and_apply(tmp_path):
    from style_transformer.editing.toolkit import EditingModels, EditSetting, settings_from_maps

    v = torch.zeros(1, 4)
    v[0, 0] = 1.0
    models = EditingModels(directions={"Smiling": Direction("Smiling", v, "interfacegan")},
                           settings=settings_from_maps(strengths={"interfacegan": {"Smiling": 2.0}},
                                                       layers={"interfacegan": {"Smiling": (1, 3)}}))
    models.save(tmp_path / "ed")
    back = EditingModels.load(tmp_path / "ed")
    assert back.settings == {"interfacegan": {"Smiling": EditSetting(strength=2.0, rows=(1, 3))}}
    ws = torch.zeros(2, 5, 4)
    out = back.edit(ws, "Smiling")  # stored strength 2 on stored rows 1-2
    expected = torch.zeros(2, 5, 4)
    expected[:, 1:3, 0] = 2.0
    assert torch.equal(out, expected)
    out = back.edit(ws, "Smiling", strength=1.0, layers=(0, 5))  # explicit rows win
    assert torch.equal(out[:, :, 0], torch.ones(2, 5))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(DirectionError, match="finite"):
            back.edit(ws, "Smiling", strength=bad)
    text = (tmp_path / "ed" / "editing.json").read_text().replace("[\n        1,\n        3\n      ]", "[3, 1]")
    (tmp_path / "ed" / "editing.json").write_text(text)
    with pytest.raises(DirectionError, match="row range"):
        EditingModels.load(tmp_path / "ed")


def test_classifier_metric_is_stored_and_uses_the_generators_covariance(tmp_path, generator):
    from style_transformer.config import LatentClassifierConfig
    from style_transformer.editing.classifier_edit import edit_with_classifier
    from style_transformer.editing.toolkit import EditingModels, settings_from_maps
    from style_transformer.models.editing import LatentClassifier

    torch.manual_seed(0)
    clf = LatentClassifier(LatentClassifierConfig(attributes=("a", "b"), num_ws=generator.num_ws, w_dim=16,
                                                  hidden=(32,), embed_dim=4)).eval()
    models = EditingModels(latent_classifier=clf, settings=settings_from_maps(strengths={"classifier": {"a": 2.0}}))
    assert models.classifier_metric == "covariance"  # what new folders use
    models.save(tmp_path / "ed")
    back = EditingModels.load(tmp_path / "ed")
    assert back.classifier_metric == "covariance"
    ws = torch.randn(3, generator.num_ws, 16, generator=torch.Generator().manual_seed(1))
    expected = edit_with_classifier(ws, clf, "a", 2.0, metric=w_covariance(generator).float())
    torch.testing.assert_close(back.edit(ws, "a", method="classifier", generator=generator), expected)
    assert not torch.allclose(expected, edit_with_classifier(ws, clf, "a", 2.0), atol=1e-3)
    with pytest.raises(DirectionError, match="need the generator"):
        back.edit(ws, "a", method="classifier")
    # a folder whose editing.json does not name a metric keeps the plain gradient it was calibrated with
    cfg = tmp_path / "ed" / "editing.json"
    cfg.write_text(cfg.read_text().replace('"classifier_metric": "covariance"', '"x": 0'))
    old = EditingModels.load(tmp_path / "ed")
    assert old.classifier_metric == "euclidean"
    torch.testing.assert_close(old.edit(ws, "a", method="classifier"), edit_with_classifier(ws, clf, "a", 2.0))
    cfg.write_text(cfg.read_text().replace('"x": 0', '"classifier_metric": "fisher"'))
    with pytest.raises(DirectionError, match="classifier_metric must be one of"):
        EditingModels.load(tmp_path / "ed")
    # per-attribute hold weights of classifier edits (default 1, the paper's) round-trip and are used
    back.set("classifier", "a", keep=0.0)
    back.save(tmp_path / "ed2")
    again = EditingModels.load(tmp_path / "ed2")
    assert again.setting("classifier", "a").keep == 0.0 and again.settings_maps()["classifier_keep"] == {"a": 0.0}
    cov = w_covariance(generator).float()
    torch.testing.assert_close(again.edit(ws, "a", method="classifier", generator=generator),
                               edit_with_classifier(ws, clf, "a", 2.0, metric=cov, keep=0.0))
    torch.testing.assert_close(again.edit(ws, "b", method="classifier", strength=1.0, generator=generator),
                               edit_with_classifier(ws, clf, "b", 1.0, metric=cov, keep=1.0))
    cfg2 = tmp_path / "ed2" / "editing.json"
    cfg2.write_text(cfg2.read_text().replace('"a": 0.0', '"a": -1'))
    with pytest.raises(DirectionError, match="classifier_keep must map attributes"):
        EditingModels.load(tmp_path / "ed2")


class _Brightness(torch.nn.Module):
    """A stand-in image judge: 'bright' when the mean pixel is above 0, 'red' when red beats green."""

    attributes = ("bright", "red")

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device

    def predict(self, img):
        img = img.float().cpu()
        return torch.stack([torch.sigmoid(100 * img.mean((1, 2, 3))),
                            torch.sigmoid(100 * (img[:, 0] - img[:, 1]).mean((1, 2)))], 1)


def test_labelled_samples_label_what_each_code_draws(generator):
    from style_transformer.editing import labelled_samples

    judge = _Brightness()
    ws, labels = labelled_samples(generator, judge, 20, seed=3, batch_size=7)
    z = torch.randn(20, generator.style_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expect_w = generator.mapping(z)
        img = generator.synthesis(expect_w[:, None].expand(-1, generator.num_ws, -1)).clamp(-1, 1)  # as judged
    torch.testing.assert_close(ws, expect_w)
    expect = torch.stack([img.mean((1, 2, 3)) > 0, (img[:, 0] - img[:, 1]).mean((1, 2)) > 0], 1).float()
    assert torch.equal(labels, expect)
    ws2, labels2 = labelled_samples(generator, judge, 20, seed=3, batch_size=64)
    torch.testing.assert_close(ws2, ws)
    assert torch.equal(labels2, labels)


def test_reference_edit_strength_scales_the_editors_move_on_its_rows(tmp_path):
    from style_transformer.config import ReferenceEditorConfig
    from style_transformer.editing.toolkit import EditingModels, EditSetting
    from style_transformer.models.editing import ReferenceEditor

    torch.manual_seed(0)
    editor = ReferenceEditor(ReferenceEditorConfig(d_model=8, n_heads=2, ffn_dim=16, attribute="Bangs",
                                                   residual=True)).eval()
    models = EditingModels(editors={"Bangs": editor})
    g = torch.Generator().manual_seed(1)
    ws, ref = torch.randn(3, 5, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    with torch.no_grad():
        out = editor(ws, ref)
    # no stored strength: the editor's own output, unchanged
    assert torch.equal(models.edit(ws, "Bangs", ws_ref=ref), out)
    # a scale s on rows [1, 4): w_t + s (out - w_t) there, w_t elsewhere (float64 reference)
    expected = ws.double().clone()
    expected[:, 1:4] += 2.5 * (out.double() - ws.double())[:, 1:4]
    got = models.edit(ws, "Bangs", ws_ref=ref, strength=2.5, layers=(1, 4))
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-5)
    assert torch.equal(got[:, 0], ws[:, 0]) and torch.equal(got[:, 4], ws[:, 4])
    # stored defaults round-trip through editing.json and are used
    models.set("reference", "Bangs", strength=2.5, rows=(1, 4))
    models.save(tmp_path / "ed")
    back = EditingModels.load(tmp_path / "ed")
    assert back.setting("reference", "Bangs") == EditSetting(strength=2.5, rows=(1, 4))
    torch.testing.assert_close(back.edit(ws, "Bangs", ws_ref=ref[:1]).double(),
                               ws.double() + 2.5 * torch.cat([torch.zeros(1, 8), torch.ones(3, 8), torch.zeros(1, 8)]
                                                            ).view(1, 5, 8).double()
                               * (editor(ws, ref[:1].expand(3, -1, -1)).detach() - ws).double(), rtol=0, atol=1e-5)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(DirectionError, match="must be > 0"):
            back.edit(ws, "Bangs", ws_ref=ref, strength=bad)
    with pytest.raises(DirectionError, match="outside"):
        back.edit(ws, "Bangs", ws_ref=ref, layers=(2, 9))


def test_reference_edits_that_remove_take_their_own_scale(tmp_path):
    from style_transformer.config import LatentClassifierConfig, ReferenceEditorConfig
    from style_transformer.editing.toolkit import EditingModels, EditSetting, settings_from_maps
    from style_transformer.models.editing import LatentClassifier, ReferenceEditor

    torch.manual_seed(0)
    editor = ReferenceEditor(ReferenceEditorConfig(d_model=8, n_heads=2, ffn_dim=16, attribute="Bangs",
                                                   residual=True)).eval()
    clf = LatentClassifier(LatentClassifierConfig(attributes=("Smiling", "Bangs"), num_ws=5, w_dim=8, hidden=(16,),
                                                  embed_dim=4)).eval()
    models = EditingModels(editors={"Bangs": editor}, latent_classifier=clf,
                           settings=settings_from_maps(strengths={"reference": {"Bangs": 2.0}},
                                                       reference_remove={"Bangs": 0.5}))
    g = torch.Generator().manual_seed(1)
    ws, ref = torch.randn(16, 5, 8, generator=g), torch.randn(16, 5, 8, generator=g)
    with torch.no_grad():
        out = editor(ws, ref)
        removing = clf(ref)[0][:, 1] < clf(ws)[0][:, 1]  # the reference shows less Bangs than the target
    assert removing.any() and (~removing).any()
    scale = torch.where(removing, 0.5, 2.0).double().view(-1, 1, 1)
    expected = ws.double() + scale * (out.double() - ws.double())
    torch.testing.assert_close(models.edit(ws, "Bangs", ws_ref=ref).double(), expected, rtol=0, atol=1e-5)
    # an explicit strength is one scale for every edit
    torch.testing.assert_close(models.edit(ws, "Bangs", ws_ref=ref, strength=1.0), out)
    models.save(tmp_path / "ed")
    back = EditingModels.load(tmp_path / "ed")
    assert back.setting("reference", "Bangs") == EditSetting(strength=2.0, remove=0.5)
    torch.testing.assert_close(back.edit(ws, "Bangs", ws_ref=ref).double(), expected, rtol=0, atol=1e-5)
    cfg = tmp_path / "ed" / "editing.json"
    cfg.write_text(cfg.read_text().replace('"Bangs": 0.5', '"Bangs": 0'))
    with pytest.raises(DirectionError, match="reference_remove must map attributes to scales > 0"):
        EditingModels.load(tmp_path / "ed")


def _newton_logistic(x, y, l2):
    """The same objective, mean softplus(-s (x.w + b)) + l2/2 |w|^2, minimised by Newton's method in
    float64 (convex: converges to machine precision): an independent reference for fit_boundary."""
    n, d = x.shape
    xa = np.hstack([x, np.ones((n, 1))])
    s = 2 * y - 1
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0  # the bias is not regularised
    for _ in range(100):
        m = s * (xa @ theta)
        p = 1 / (1 + np.exp(m))  # sigmoid(-m)
        grad = -(xa * (s * p)[:, None]).mean(0) + reg * theta
        hess = (xa * (p * (1 - p))[:, None]).T @ xa / n + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-14:
            break
    return theta[:-1], theta[-1]


@pytest.mark.parametrize("layout", ["w", "wplus"])
def test_logistic_boundary_is_the_regularised_optimum(layout):
    rng = np.random.default_rng(5)
    n, d = 120, 6
    x = rng.normal(size=(n, d)) + 2.0  # off-centre, so the bias matters
    truth = rng.normal(size=d)
    y = ((x - 2.0) @ truth + 0.8 * rng.normal(size=n) > 0).astype(np.float64)  # overlapping classes: finite optimum
    w_ref, b_ref = _newton_logistic(x, y, 1e-3)
    lat = torch.from_numpy(x).float()
    if layout == "wplus":
        lat = lat.reshape(n, 2, 3)
    normal, bias, info = fit_boundary(lat, torch.from_numpy(y), l2=1e-3)
    assert normal.shape == lat.shape[1:]
    got = normal.reshape(-1).double().numpy()
    unit = w_ref / np.linalg.norm(w_ref)
    assert np.abs(got - unit).max() < 1e-5  # the float32 latents bound the agreement
    assert bias == pytest.approx(b_ref, rel=1e-4, abs=1e-4)
    assert info["accuracy"] == pytest.approx(float((((x @ w_ref + b_ref) > 0) == y).mean()), abs=1 / n)
    with pytest.raises(DirectionError, match="latents but"):
        fit_boundary(lat[:5], torch.from_numpy(y[:4]))


def test_row_mask_edges_and_direction_rows():
    from style_transformer.editing.directions import row_mask

    ws = torch.zeros(2, 4, 3, dtype=torch.float64)
    assert row_mask(ws, (0, 4)).dtype == torch.float64 and row_mask(ws, (0, 4)).sum() == 4
    assert row_mask(ws, (3, 4)).reshape(-1).tolist() == [0, 0, 0, 1]
    assert row_mask(ws, None).sum() == 4
    for bad in ((2, 2), (-1, 2), (0, 5), (3, 1)):
        with pytest.raises(DirectionError, match="outside the 4 W"):
            row_mask(ws, bad)
    # a per-row direction with more rows than the latents is cut to them; fewer (but > 1) is refused
    vec = torch.arange(18 * 3, dtype=torch.float32).reshape(18, 3)
    out = Direction("d", vec, "file").apply(ws, 2.0)
    assert out.dtype == torch.float64 and torch.equal(out[0], 2.0 * vec[:4].double())
    with pytest.raises(DirectionError, match="has 2 rows, latents have 4"):
        Direction("d", torch.ones(2, 3), "file").apply(ws, 1.0)
    with pytest.raises(DirectionError, match="has width 5"):
        Direction("d", torch.ones(1, 5), "file").apply(ws, 1.0)
    one = Direction("d", torch.ones(1, 3), "file", layers=(1, 3)).apply(ws, 0.5)
    assert one[:, 0].abs().sum() == 0 and torch.equal(one[:, 1:3], torch.full((2, 2, 3), 0.5, dtype=torch.float64))


def test_directions_round_trip_everything_and_refuse_bad_indexes(tmp_path):
    import json

    from style_transformer.editing.directions import FORMAT

    ds = [Direction("a", torch.randn(1, 4, dtype=torch.float64), "ganspace", layers=(0, 1), info={"k": 2.0}),
          Direction("b", torch.randn(3, 4), "sefa")]
    idx = save_directions(ds, tmp_path / "new" / "nested")  # parent folders are made
    written = json.loads(idx.read_text())
    assert written["format"] == FORMAT and written["version"] == 1
    assert written["directions"]["a"] == {"file": "a.npy", "method": "ganspace", "layers": [0, 1], "info": {"k": 2.0}}
    save_directions(ds, tmp_path / "new" / "nested")  # writing again over an existing folder is fine
    back = load_directions(tmp_path / "new" / "nested")
    for d in ds:
        got = back[d.name]
        assert (got.name, got.method, got.layers, got.info) == (d.name, d.method, d.layers, d.info)
        assert got.vector.dtype == torch.float32 and torch.equal(got.vector, d.vector.float())
    # an entry without a method is a plain file direction
    del written["directions"]["b"]["method"]
    idx.write_text(json.dumps(written))
    assert load_directions(idx.parent)["b"].method == "file"
    # a published .npy: named after its file, method "file", float32, 1-D taken as one row
    np.save(tmp_path / "smile.npy", np.arange(4, dtype=np.float64))
    one = load_boundary(tmp_path / "smile.npy")
    assert (one.name, one.method, one.vector.dtype, tuple(one.vector.shape)) == ("smile", "file", torch.float32, (1, 4))
    assert load_boundary(tmp_path / "smile.npy", "Smiling").name == "Smiling"
    for bad in (np.ones((1, 4), dtype=np.int64), np.array([[1.0, np.nan]])):
        np.save(tmp_path / "bad.npy", bad)
        with pytest.raises(DirectionError, match="expected finite floats"):
            load_boundary(tmp_path / "bad.npy")
    with pytest.raises(DirectionError, match="not found"):
        load_boundary(tmp_path / "nope.npy")

    def refused(entry_or_index, match):
        index = entry_or_index if "format" in entry_or_index else {
            "format": FORMAT, "version": 1, "directions": {"a": dict({"file": "a.npy"}, **entry_or_index)}}
        idx.write_text(json.dumps(index))
        with pytest.raises(DirectionError, match=match):
            load_directions(idx.parent)

    for layers in ([0, 0], [2, 1], [-1, 2], [0, "2"], [0.0, 2], [0, 1, 2]):
        refused({"layers": layers}, "layers must be")
    for file in ("../a.npy", "sub/a.npy", "", 3):
        refused({"file": file}, "the file must be a name inside the folder")
    refused({"info": [1]}, "info must be an object")
    refused({"format": "other", "directions": {}}, "not a directions index")
    refused({"format": FORMAT, "directions": {"a": 1}}, "map names to entries")
    refused({"format": FORMAT, "directions": [1]}, "map names to entries")
    idx.write_bytes(b"\xff\xfe{")
    with pytest.raises(DirectionError, match="invalid JSON"):
        load_directions(idx.parent)


def _newton_squared_hinge(x, y, l2):
    """mean relu(1 - s (x.w + b))^2 + l2/2 |w|^2 by Newton's method on the active set (the loss is
    piecewise quadratic), float64: the reference for the ``svm`` boundary."""
    n, d = x.shape
    xa = np.hstack([x, np.ones((n, 1))])
    s = 2 * y - 1
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(200):
        slack = 1 - s * (xa @ theta)
        act = slack > 0
        grad = -2 * (xa[act] * (s[act] * slack[act])[:, None]).sum(0) / n + reg * theta
        hess = 2 * xa[act].T @ xa[act] / n + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-15:
            break
    return theta[:-1], theta[-1]


def _overlapping(seed, n=150, d=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + 1.5
    truth = rng.normal(size=d)
    y = ((x - 1.5) @ truth + 1.0 * rng.normal(size=n) > 0).astype(np.float64)
    return x, y


def test_boundaries_by_default_are_the_optimum_of_their_documented_objective():
    # defaults: l2 = 1e-3, fitted in float64 to convergence (the latents given in float64 here, so the
    # agreement is limited only by the solvers)
    x, y = _overlapping(11)
    normal, bias, info = fit_boundary(torch.from_numpy(x), torch.from_numpy(y))
    w_ref, b_ref = _newton_logistic(x, y, 1e-3)
    np.testing.assert_allclose(normal.double().numpy(), w_ref / np.linalg.norm(w_ref), atol=1e-6)
    assert bias == pytest.approx(b_ref, rel=1e-6)
    normal, bias, info = fit_boundary(torch.from_numpy(x), torch.from_numpy(y), "svm")
    w_ref, b_ref = _newton_squared_hinge(x, y, 1e-3)
    np.testing.assert_allclose(normal.double().numpy(), w_ref / np.linalg.norm(w_ref), atol=1e-6)
    assert bias == pytest.approx(b_ref, rel=1e-6)
    assert info["accuracy"] == pytest.approx(float((((x @ w_ref + b_ref) > 0) == y).mean()), abs=1 / len(y))
    # a strongly regularised boundary has a short raw normal: the result is still of unit length
    normal, bias, _ = fit_boundary(torch.from_numpy(x), torch.from_numpy(y), l2=50.0)
    w_ref, b_ref = _newton_logistic(x, y, 50.0)
    assert np.linalg.norm(w_ref) < 0.1
    assert normal.double().norm().item() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(normal.double().numpy(), w_ref / np.linalg.norm(w_ref), atol=1e-6)
    with pytest.raises(DirectionError) as e:
        fit_boundary(torch.zeros(4, 2), torch.tensor([0, 2, 0, 1]))
    assert str(e.value) == "labels must be 0/1 with both values present"


def test_apply_keeps_the_latents_dtype_and_fits_rows():
    ws = torch.zeros(2, 3, 8, dtype=torch.float16)
    out = Direction("d", torch.ones(1, 8), "file").apply(ws, 2.0)
    assert out.dtype == torch.float16 and torch.equal(out, torch.full_like(ws, 2.0))
    # a per-row direction with exactly the latents' rows (fewer rows than the code is wide)
    vec = torch.arange(24, dtype=torch.float32).reshape(3, 8)
    torch.testing.assert_close(Direction("d", vec, "file").apply(ws.float(), 1.0), vec.expand(2, 3, 8))
    # more rows than the latents (but fewer than the code is wide): cut to the latents' rows
    vec = torch.arange(40, dtype=torch.float32).reshape(5, 8)
    torch.testing.assert_close(Direction("d", vec, "file").apply(ws.float(), 1.0), vec[:3].expand(2, 3, 8))


def test_ganspace_and_sefa_defaults_and_scale(generator):
    # GANSpace: standard deviations are the square roots of the covariance's eigenvalues, small ones too
    comps, std = ganspace(generator, n_components=16, n_samples=2000, seed=4)
    assert comps.shape == (16, 16)
    evals = np.linalg.eigvalsh(w_covariance(generator, 2000, 4).numpy())[::-1]
    assert evals[-1] < 1
    np.testing.assert_allclose(std.double().numpy(), np.sqrt(np.clip(evals, 0, None)), rtol=1e-4, atol=1e-6)
    assert ganspace(generator, n_samples=500)[0].shape == (10, 16)  # ten components by default
    # SeFa: every W+ row by default; each modulation's matrix is what its forward pass applies
    dirs, ev = sefa(generator)
    assert dirs.shape == (10, 16)
    every = sefa(generator, n_components=10, layers=list(range(generator.num_ws)))
    torch.testing.assert_close(ev, every[1])
    eye = torch.eye(16)
    with torch.no_grad():
        applied = torch.cat([m(eye) - m(torch.zeros(1, 16)) for mods in style_modulations(generator) for m in mods], 1)
    torch.testing.assert_close(modulation_weights(generator), applied.T, rtol=1e-5, atol=1e-6)
    # column-normalised: the directions and eigenvalues do not depend on the weights' scale
    small = Generator(GEN).eval()
    small.load_state_dict(generator.state_dict())
    with torch.no_grad():
        for mods in style_modulations(small):
            for m in mods:
                m.weight.mul_(1e-3)
    d2, ev2 = sefa(small, n_components=4)
    torch.testing.assert_close(ev2, ev[:4], rtol=1e-4, atol=1e-6)
    assert (d2 * dirs[:4]).sum(1).abs().min() > 0.999


def test_mixed_codes_mix_rows_and_interpolate_with_the_documented_distributions():
    from style_transformer.editing import mixed_codes

    n, rows = 3000, 4
    ws = torch.randn(n, rows, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = mixed_codes(ws, 3, seed=5)
    assert out.shape == (3 * n, rows, 2) and out.dtype == torch.float64
    assert torch.equal(out, mixed_codes(ws, 3, seed=5)) and not torch.equal(out, mixed_codes(ws, 3, seed=6))
    # rounds 0 and 2 style-mix: rows lo..hi (inclusive) from a partner, lo/hi two uniform rows, so the
    # block has k rows with probability 1/L (k = 1) or 2 (L - k + 1) / L^2
    for r in (0, 2):
        mix = out[r * n:(r + 1) * n]
        own = (mix == ws).all(-1)  # [n, rows]
        taken = ~own
        sizes = taken.sum(1)
        mixed = sizes > 0  # a code drawn as its own partner keeps every row
        assert mixed.float().mean() > 0.99
        for i in torch.nonzero(mixed).flatten()[:200]:
            idx = torch.nonzero(taken[i]).flatten()
            assert int(idx[-1] - idx[0]) + 1 == len(idx)  # contiguous
        freq = torch.bincount(sizes[mixed], minlength=rows + 1)[1:].double() / mixed.sum()
        want = torch.tensor([1 / rows] + [2 * (rows - k + 1) / rows ** 2 for k in range(2, rows + 1)],
                            dtype=torch.float64)
        assert (freq - want).abs().max() < 0.03
    # round 1 interpolates: w + t (partner - w), t ~ U(0, 1), partners uniform over the codes
    move = out[n:2 * n] - ws
    t, partners = [], []
    for i in range(300):
        seg = ws - ws[i]  # to every candidate partner
        tt = (seg * move[i]).sum((1, 2)) / seg.pow(2).sum((1, 2)).clamp_min(1e-12)
        err = (move[i] - tt.view(-1, 1, 1) * seg).flatten(1).norm(dim=1)
        j = int(err.argmin())
        assert float(err[j]) < 1e-9
        t.append(float(tt[j]))
        partners.append(j)
    t = np.array(t)
    assert t.min() >= 0 and t.max() <= 1 and abs(t.mean() - 0.5) < 0.06 and abs(t.var() - 1 / 12) < 0.02
    assert len(set(partners)) > 250
    with pytest.raises(ValueError, match=r"codes must be \[N, L, d\], got \(3, 4\)"):
        mixed_codes(torch.zeros(3, 4), 1)
    assert mixed_codes(ws, 0).shape == (0, rows, 2)


def test_direction_files_keep_their_entry_names_formats_and_reasons(tmp_path, monkeypatch):
    import json

    from style_transformer.editing.directions import FORMAT, INDEX, describe

    d = Direction("Smiling", torch.ones(2, 4, dtype=torch.float64), "interfacegan", layers=(0, 1), info={"acc": 0.9})
    assert describe(d) == {"name": "Smiling", "method": "interfacegan", "layers": (0, 1), "info": {"acc": 0.9},
                           "shape": [2, 4]}
    save_directions([d], tmp_path)
    assert np.load(tmp_path / "Smiling.npy").dtype == np.float32  # the files are float32 whatever the vector
    # an entry named unlike its file keeps the entry's name; missing info and directions are empty
    np.save(tmp_path / "s.npy", np.ones((1, 4), np.float32))
    (tmp_path / INDEX).write_text(json.dumps({"format": FORMAT, "directions": {"Happy": {"file": "s.npy"}}}))
    got = load_directions(tmp_path)
    assert list(got) == ["Happy"] and got["Happy"].name == "Happy" and got["Happy"].info == {}
    assert got["Happy"].layers is None and got["Happy"].method == "file"
    (tmp_path / INDEX).write_text(json.dumps({"format": FORMAT}))
    assert load_directions(tmp_path) == {}
    # an object array is refused by the loader itself (never unpickled)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DirectionError) as e:
        load_boundary(tmp_path / "obj.npy")
    assert str(e.value).startswith(f"{tmp_path / 'obj.npy'}: not a readable .npy array (Object arrays cannot be loaded")
    # reasons are quoted, cut at 120 characters
    import style_transformer.editing.directions as mod

    def raising(*a, **k):
        raise ValueError("r" * 300)

    monkeypatch.setattr(mod.np, "load", raising)
    with pytest.raises(DirectionError) as e:
        load_boundary(tmp_path / "s.npy")
    assert str(e.value) == f"{tmp_path / 's.npy'}: not a readable .npy array ({'r' * 120})"
    monkeypatch.setattr(mod.json, "loads", raising)
    with pytest.raises(DirectionError) as e:
        load_directions(tmp_path)
    assert str(e.value) == f"{tmp_path / INDEX}: invalid JSON ({'r' * 120})"


def test_modulation_weights_of_chosen_rows_and_covariance_of_a_conditional_generator(generator):
    rows = style_modulations(generator)
    for r in (0, 1, len(rows) - 1):
        want = torch.cat([m.weight * m.scale for m in rows[r]])
        torch.testing.assert_close(modulation_weights(generator, [r]), want)
    assert len(modulation_weights(generator, [0, 1])) < len(modulation_weights(generator))
    # a conditional generator samples labels too: drawn from the seed, not the global random state
    cond = Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8), c_dim=3)).eval()
    torch.manual_seed(1)
    a = w_covariance(cond, n_samples=300, seed=7)
    torch.manual_seed(2)
    torch.testing.assert_close(w_covariance(cond, n_samples=300, seed=7), a, rtol=0, atol=0)

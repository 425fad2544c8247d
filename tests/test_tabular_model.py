"""Tests for Step_4.tabular.model: FT-Transformer encoder and masked-feature-modelling pretraining."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from Step_4.tabular.model import FTConfig, FTTransformerEncoder, MaskedFeatureModel, parameter_groups

CARDS = [4, 3, 8]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models: one intra-op thread is much faster than contending for busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(n: int = 8, n_num: int = 5, cards: list[int] = CARDS, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_num = torch.randn(n, n_num, generator=g)
    missing = (torch.rand(n, n_num, generator=g) < 0.25).float()
    missing[0] = 0.0  # every feature observed somewhere ...
    if n_num:
        missing[1, 0] = 1.0  # ... and missing somewhere
    x_num = x_num * (1 - missing)
    x_cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in cards], 1) if cards \
        else torch.zeros(n, 0, dtype=torch.long)
    return x_num, missing, x_cat


def make_encoder(n_num: int = 5, cards: list[int] = CARDS, **kw) -> FTTransformerEncoder:
    torch.manual_seed(0)
    return FTTransformerEncoder(config=FTConfig(n_numeric=n_num, cardinalities=list(cards), **kw))


def test_forward_backward_all_parameters_get_gradients():
    enc = make_encoder()
    out = enc(*batch())
    assert out.shape == (8, 64) and enc.out_dim == 64
    assert torch.isfinite(out).all()
    out.pow(2).mean().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_forward_equals_normalised_cls_of_encode_and_token_layout():
    enc = make_encoder().eval()
    x_num, missing, x_cat = batch()
    tokens = enc.tokens(x_num, missing, x_cat)
    assert tokens.shape == (8, 1 + 5 + 3, 64)
    encoded = enc.encode(tokens)
    assert encoded.shape == tokens.shape
    torch.testing.assert_close(enc(x_num, missing, x_cat), enc.normalization(encoded[:, 0]))


def test_missing_values_are_replaced_by_missing_embedding():
    enc = make_encoder().eval()
    x_num, missing, x_cat = batch()
    assert missing.sum() > 0
    changed = torch.where(missing.bool(), torch.full_like(x_num, 123.0), x_num)
    changed[1, 0] = float("nan")  # even NaN at a missing position is ignored
    torch.testing.assert_close(enc(x_num, missing, x_cat), enc(changed, missing, x_cat))
    tokens = enc.tokens(x_num, missing, x_cat)
    i, j = 1, 0
    torch.testing.assert_close(tokens[i, 1 + j], enc.missing_embedding[j])
    # gradients stay finite with NaN at missing positions
    enc.train()
    enc(changed, missing, x_cat).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
    # an observed value does change the output
    other = x_num.clone()
    other[0, 0] += 3.0
    enc.eval()
    assert not torch.allclose(enc(x_num, missing, x_cat)[0], enc(other, missing, x_cat)[0])


@pytest.mark.parametrize("n_num,cards", [(0, CARDS), (5, [])])
def test_numeric_only_or_categorical_only(n_num, cards):
    enc = make_encoder(n_num, cards)
    x_num, missing, x_cat = batch(n_num=n_num, cards=cards)
    out = enc(x_num, missing, x_cat)
    assert out.shape == (8, 64) and torch.isfinite(out).all()
    assert enc.tokens(x_num, missing, x_cat).shape == (8, 1 + n_num + len(cards), 64)
    mfm = MaskedFeatureModel(encoder=enc)
    result = mfm(x_num, missing, x_cat, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(result["loss"]) and result["loss"] > 0
    zero = result["cat_loss"] if not cards else result["num_loss"]
    assert zero.item() == 0.0
    result["loss"].backward()


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        FTConfig(n_numeric=0, cardinalities=[])
    enc = make_encoder()
    x_num, missing, x_cat = batch()
    with pytest.raises(ValueError, match="x_num"):
        enc(x_num[0], missing[0], x_cat[0])
    with pytest.raises(ValueError, match="x_cat"):
        enc(x_num, missing, x_cat[:, :2])
    with pytest.raises(ValueError, match="range"):
        enc(x_num, missing, x_cat + 10)
    with pytest.raises(ValueError, match="ndim"):
        enc.encode(torch.zeros(2, 64))


def test_config_round_trips_through_json():
    cfg = FTConfig(n_numeric=5, cardinalities=(4, 3, 8), d_block=32, n_blocks=1)
    restored = FTConfig(**json.loads(json.dumps(asdict(cfg))))
    assert restored == cfg
    FTTransformerEncoder(config=restored).load_state_dict(FTTransformerEncoder(config=cfg).state_dict())


def synthetic_table(n: int, seed: int):
    """x1 = x0, x2 = -x0, x3 = x0 + small noise; cat0 = bucket of x0, cat1 = sign of x0; with missing cells."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, generator=g)
    x_num = torch.stack([x0, x0, -x0, x0 + 0.1 * torch.randn(n, generator=g)], 1)
    buckets = torch.bucketize(x0, torch.tensor([-0.7, 0.0, 0.7]))  # 0..3
    x_cat = torch.stack([buckets + 2, (x0 > 0).long() + 2], 1)  # 0 missing, 1 unseen, 2.. vocab
    missing = (torch.rand(n, 4, generator=g) < 0.05).float()
    x_num = x_num * (1 - missing)
    x_cat = x_cat.masked_fill(torch.rand(n, 2, generator=g) < 0.05, 0)
    return x_num, missing, x_cat


def test_mfm_training_reduces_loss():
    torch.manual_seed(0)
    enc = FTTransformerEncoder(config=FTConfig(n_numeric=4, cardinalities=[6, 4], d_block=32, n_blocks=1,
                                               attention_dropout=0.0, ffn_dropout=0.0))
    mfm = MaskedFeatureModel(encoder=enc, mask_fraction=0.3)
    opt = torch.optim.AdamW(parameter_groups(mfm, 1e-5), lr=1e-3)
    x_num, missing, x_cat = synthetic_table(256, seed=1)
    eval_gen = lambda: torch.Generator().manual_seed(123)  # noqa: E731 - same masks before and after

    def evaluate() -> dict[str, float]:
        mfm.eval()
        with torch.no_grad():
            return {k: v.item() for k, v in mfm(x_num, missing, x_cat, generator=eval_gen()).items()}

    initial = evaluate()
    assert all(torch.isfinite(torch.tensor(v)) for v in initial.values())
    gen = torch.Generator().manual_seed(7)
    mfm.train()
    for _ in range(200):
        idx = torch.randint(0, 256, (64,), generator=gen)
        loss = mfm(x_num[idx], missing[idx], x_cat[idx], generator=gen)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = evaluate()
    assert final["loss"] < 0.3 * initial["loss"], (initial, final)
    assert final["cat_accuracy"] > initial["cat_accuracy"]


def test_mask_fraction_and_missing_tokens_never_targets():
    enc = make_encoder(n_num=20, cards=[5] * 20)
    mfm = MaskedFeatureModel(encoder=enc, mask_fraction=0.2)
    gen = torch.Generator().manual_seed(3)
    # all observed: fraction ~ p, plus the forced token in rows that drew none
    observed = torch.ones(2000, 40, dtype=torch.bool)
    mask = mfm.choose_mask(observed, gen)
    expected = 0.2 + 0.8**40 / 40
    assert abs(mask.float().mean().item() - expected) < 0.01
    assert mask.any(1).all()
    # half missing: only observed tokens are masked; at least one per row; all-missing rows still get one
    observed = torch.rand(2000, 40, generator=gen) < 0.5
    observed[0] = False
    observed[1] = False
    observed[1, 17] = True
    mask = mfm.choose_mask(observed, gen)
    assert mask.any(1).all()
    assert (mask & observed).any(1)[1:].all()  # every row with an observed value has a target
    assert mask[1].nonzero().flatten().tolist() == [17]
    assert not (mask & ~observed)[1:].any()
    rate = (mask & observed).sum() / observed.sum()
    assert abs(rate.item() - 0.2) < 0.02
    # through forward: a row whose only observed value is masked; its missing tokens are not targets
    x_num, missing, x_cat = batch(n=4, n_num=20, cards=[5] * 20)
    missing[:] = 1.0
    x_num[:] = 0.0
    x_cat[:] = 0
    out = mfm(x_num, missing, x_cat, generator=gen)  # nothing observed: no targets, zero losses, no NaN
    assert all(v.item() == 0.0 for v in out.values())
    x_cat[:, 3] = 2
    x_num[:, 0] = 1e6  # missing numeric with a huge value would dominate the MSE if it were a target
    out = mfm(x_num, missing, x_cat, generator=gen)
    assert out["num_loss"].item() == 0.0 and out["cat_loss"].item() > 0


def test_encoder_weights_transfer_from_mfm():
    cfg = FTConfig(n_numeric=5, cardinalities=CARDS, d_block=32)
    torch.manual_seed(0)
    mfm = MaskedFeatureModel(encoder=FTTransformerEncoder(config=cfg))
    opt = torch.optim.Adam(mfm.parameters(), lr=1e-2)
    x_num, missing, x_cat = batch()
    for _ in range(3):
        opt.zero_grad()
        mfm(x_num, missing, x_cat)["loss"].backward()
        opt.step()
    torch.manual_seed(1)
    fresh = FTTransformerEncoder(config=FTConfig(**asdict(cfg)))
    assert not torch.allclose(fresh.eval()(x_num, missing, x_cat), mfm.encoder.eval()(x_num, missing, x_cat))
    fresh.load_state_dict(mfm.encoder.state_dict())  # strict
    torch.testing.assert_close(fresh(x_num, missing, x_cat), mfm.encoder(x_num, missing, x_cat), rtol=0, atol=0)


def test_parameter_groups_match_rtdl_and_cover_tokens():
    from rtdl_revisiting_models import FTTransformer

    torch.manual_seed(0)
    ref = FTTransformer(n_cont_features=5, cat_cardinalities=CARDS, d_out=None,
                        **{k: v for k, v in FTTransformer.get_default_kwargs(2).items() if k != "_is_default"})
    ours = parameter_groups(ref, 0.1)
    theirs = ref.make_parameter_groups()
    assert {id(p) for p in ours[1]["params"]} == {id(p) for p in theirs[1]["params"]}
    assert {id(p) for p in ours[0]["params"]} == {id(p) for p in theirs[0]["params"]}

    mfm = MaskedFeatureModel(encoder=make_encoder())
    groups = parameter_groups(mfm, 0.1)
    no_decay = {id(p) for p in groups[1]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    for p in (mfm.mask_embedding, mfm.encoder.missing_embedding, mfm.encoder.cls_embedding.weight,
              mfm.encoder.num_embeddings.weight, mfm.encoder.normalization.weight, mfm.num_head_bias):
        assert id(p) in no_decay
    assert id(mfm.num_head_weight) not in no_decay
    assert sum(len(g["params"]) for g in groups) == len(list(mfm.parameters()))


def test_sources_without_metadata_get_an_always_missing_placeholder():
    """The shard stage's placeholder schema builds a model and marks every row's tabular modality absent."""
    from Step_3.tabular import TabularSchema, fit_schema

    schema = fit_schema(["no_tabular_fields"], [], [{"tabular": {}}, {"tabular": {}}])
    enc = TabularSchema(schema)
    x_num, missing, x_cat = enc.encode({})
    assert enc.is_empty({}) and missing.tolist() == [1.0] and x_cat.shape == (0,)
    model = FTTransformerEncoder(config=FTConfig(n_numeric=1, cardinalities=[], d_block=16, n_blocks=1,
                                                 attention_n_heads=2))
    out = model(torch.from_numpy(x_num)[None], torch.from_numpy(missing)[None], torch.from_numpy(x_cat)[None])
    assert torch.isfinite(out).all()


def test_encoder_forward_equals_the_library_ft_transformer():
    """Same weights: our CLS embedding through the library's output head equals rtdl's own forward."""
    from rtdl_revisiting_models import FTTransformer

    torch.manual_seed(0)
    cfg = FTConfig(n_numeric=3, cardinalities=[4, 5], d_block=16, n_blocks=2, attention_n_heads=2)
    ours = FTTransformerEncoder(config=cfg).eval()
    lib = FTTransformer(n_cont_features=3, cat_cardinalities=[4, 5], d_out=1, n_blocks=2, d_block=16,
                        attention_n_heads=2, attention_dropout=0.1, ffn_d_hidden=None,
                        ffn_d_hidden_multiplier=4 / 3, ffn_dropout=0.1, residual_dropout=0.0).eval()
    rename = {"num_embeddings": "cont_embeddings", "normalization": "backbone.output.normalization"}
    state = {".".join([rename.get(k.split(".")[0], k.split(".")[0]), *k.split(".")[1:]]): v
             for k, v in ours.state_dict().items() if not k.startswith("missing_embedding")}
    missing = lib.load_state_dict(state, strict=False)
    assert set(missing.missing_keys) == {"backbone.output.linear.weight", "backbone.output.linear.bias"}
    assert not missing.unexpected_keys
    x_num, x_cat = torch.randn(6, 3), torch.randint(0, 4, (6, 2))
    with torch.no_grad():
        head = lib.backbone.output
        mine = head.linear(head.activation(ours(x_num, torch.zeros(6, 3), x_cat)))
        torch.testing.assert_close(mine, lib(x_num, x_cat), rtol=1e-5, atol=1e-6)

import pytest
import torch
from synth import CHANNELS, make_windows
from torch import nn

from harvit.config import Config
from harvit.imaging.imager import SignalImager
from harvit.imaging.scaling import Scaler
from harvit.models.classifier import WindowClassifier, aggregate_views
from harvit.models.net import build_head, build_net

TINY = dict(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2,
            hidden_dims="24", freeze_encoder=False)


def test_head_layers():
    head = build_head(768, [512], 6, 0.1)
    kinds = [type(m) for m in head]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.GELU, nn.Dropout, nn.Linear]
    assert head[0].in_features == 768 and head[0].out_features == 512 and head[-1].out_features == 6
    assert head[3].p == 0.1


def test_window_classifier_shapes_per_mode():
    w = make_windows(4, [1])
    x = torch.from_numpy(w.x)
    for mode, views, in_chans in (("flatten", 9, 2), ("sensor", 3, 6), ("stack", 1, 18)):
        cfg = Config(mode=mode, encodings="gasf,mtf", **TINY)
        imager = SignalImager(CHANNELS, mode, cfg.encoding_list, cfg.img_size, Scaler.fit(w.x), cfg.to_dict())
        assert imager.in_chans == in_chans and imager.n_views == views
        model = WindowClassifier(imager, build_net(cfg, imager.in_chans, 5)).eval()
        assert model.view_logits(x).shape == (4, views, 5)
        lp = model(x)
        assert lp.shape == (4, 5)
        views_lp = torch.log_softmax(model.view_logits(x).float(), -1)
        torch.testing.assert_close(views_lp.exp().sum(-1), torch.ones(4, views))  # each view: a distribution
        torch.testing.assert_close(lp, views_lp.mean(1))  # the window: the mean of its views' log-probabilities
        total = lp.exp().sum(-1)  # a geometric mean of distributions: sums to 1 for one view, at most 1 for many
        assert torch.all(total <= 1 + 1e-5) and (views > 1 or torch.allclose(total, torch.ones(4)))


def test_frozen_encoder_stays_eval_and_untrainable():
    cfg = Config(**{**TINY, "freeze_encoder": True, "drop_path": 0.2})
    with pytest.warns(UserWarning, match="frozen but has no pretrained"):
        net = build_net(cfg, 3, 4)
    net.train()
    assert not net.encoder.training and net.head.training
    assert all(not p.requires_grad for p in net.encoder.parameters())
    assert all(p.requires_grad for p in net.head.parameters())


def test_aggregate_views_is_mean_log_softmax():
    logits = torch.randn(3, 4, 6)
    expected = torch.stack([torch.log_softmax(logits[:, v], -1) for v in range(4)]).mean(0)
    assert torch.allclose(aggregate_views(logits), expected, atol=1e-6)


def test_offline_pretrained_without_file_is_a_clear_error(monkeypatch):
    from harvit.utils.errors import HarvitError

    monkeypatch.setenv("HARVIT_OFFLINE", "1")
    with pytest.raises(HarvitError, match="--pretrained-path"):
        build_net(Config(**{**TINY, "pretrained": True}), 3, 4)


def test_image_dropout_hides_image_features_in_training_only():
    cfg = Config(**{**TINY, "dropout": 0.0, "image_dropout": 0.5})
    net = build_net(cfg, 3, 4, stats_dim=5)
    feats, stats = torch.randn(400, net.encoder.num_features), torch.randn(400, 5)
    torch.manual_seed(0)
    train_out = net.train().classify(feats, stats)
    net.eval()
    with torch.no_grad():
        hidden = net.classify(torch.zeros_like(feats), stats)
        shown = net.classify(feats, stats)
    was_hidden = torch.isclose(train_out, hidden, atol=1e-6).all(-1)
    was_shown = torch.isclose(train_out, shown, atol=1e-6).all(-1)
    assert bool((was_hidden ^ was_shown).all())  # each sample saw its image features fully, or not at all
    assert 0.35 < float(was_hidden.float().mean()) < 0.65  # about half were hidden
    assert torch.equal(net.classify(feats, stats), shown)  # evaluation never hides them


def test_stats_linear_adds_a_linear_map_of_the_statistics_to_the_logits():
    from harvit.utils.errors import HarvitError

    cfg = Config(**{**TINY, "dropout": 0.0, "stats_linear": True})
    net = build_net(cfg, 3, 4, stats_dim=5).eval()
    assert isinstance(net.stats_linear, nn.Linear) and net.stats_linear.weight.shape == (4, 5)
    feats, stats = torch.randn(7, net.encoder.num_features), torch.randn(7, 5)
    with torch.no_grad():
        expected = net.head(torch.cat([feats, stats], -1)) + stats @ net.stats_linear.weight.T + net.stats_linear.bias
        torch.testing.assert_close(net.classify(feats, stats), expected)
    assert build_net(Config(**TINY), 3, 4, stats_dim=5).stats_linear is None
    with pytest.raises(HarvitError, match="--stats-linear"):
        Config(**{**TINY, "stats_linear": True, "window_stats": False}).validate()


def test_modality_dropout_runs_the_encoder_only_on_the_kept_samples():
    """Under image dropout the encoder sees only the samples whose image features survive; the logits and
    gradients equal those of encoding all of them and zeroing the dropped ones."""
    from harvit.models.net import HarNet, build_head

    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    net = HarNet(enc, build_head(5 + 2, [], 3, 0.0), frozen=False, stats_dim=2, image_dropout=0.5).train()
    images, stats = torch.randn(16, 3, 4, 4), torch.randn(16, 2)
    seen: list[int] = []
    enc.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    torch.manual_seed(1)
    fast = net(images, stats)
    fast.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    torch.manual_seed(1)
    keep = torch.rand(16, 1) >= 0.5
    slow = net.classify(net.features(images), stats, keep=keep)
    slow.sum().backward()
    assert seen[0] == int(keep.sum()) < 16 and seen[1] == 16
    assert torch.allclose(fast, slow, atol=1e-6)
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(grads, net.parameters(), strict=True))
    # nobody keeps images: one sample still runs (zeroed), so every parameter gets a gradient
    net.zero_grad()
    net.image_dropout = 1.0
    net(images, stats).sum().backward()
    assert seen[-1] == 1 and all(p.grad is not None and not p.grad.any() for p in enc.parameters())
    # evaluation encodes every sample
    net.eval()
    net(images, stats)
    assert seen[-1] == 16


def test_attention_kernel_follows_the_device_and_keeps_the_outputs():
    """The CPU uses timm's explicit attention (faster for short token sequences), CUDA the fused kernel:
    the same function either way."""
    from harvit.models.encoder import attention_for

    cfg = Config(encoder="vit_tiny_patch16_224", img_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                 pretrained=False, freeze_encoder=False)
    net = build_net(cfg, 3, 4).eval()
    x = torch.randn(5, 3, 16, 16)
    assert attention_for(net, "cuda") == 2 and all(m.fused_attn for m in net.modules() if hasattr(m, "fused_attn"))
    fused = net(x)
    assert attention_for(net, "cpu") == 2 and not any(m.fused_attn for m in net.modules() if hasattr(m, "fused_attn"))
    assert torch.allclose(net(x), fused, atol=1e-5)

import pytest
import torch
from torch import nn

from robustmia.data.datasets import DATASETS, DatasetInfo
from robustmia.errors import UserError
from robustmia.models import MODELS, Normalize, build_model, model_spec


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


NAMES = [n for n in MODELS if n != "wrn-D-K"] + ["wrn-16-4", "wrn-10-1"]


@pytest.mark.parametrize("name, dataset", [(n, d) for n in NAMES for d in ("digits", "cifar10")
                                           if (n, d) not in (("wrn-34-10", "digits"), ("fast-cnn", "digits"))])
def test_every_model_maps_pixels_to_logits_with_normalisation_first(name, dataset):
    info = DATASETS[dataset]
    model = build_model(name, info).eval()
    assert isinstance(model[0], Normalize)
    assert torch.allclose(model[0].mean.flatten(), torch.tensor(info.mean))
    out = model(torch.rand(2, *info.shape))
    assert out.shape == (2, info.num_classes) and torch.isfinite(out).all()


def test_wide_resnets_have_the_papers_sizes():
    cifar = DATASETS["cifar10"]
    wrn = build_model("wrn-34-10", cifar)
    convs = [m for m in wrn.modules() if isinstance(m, nn.Conv2d)]
    # initial conv + 15 blocks x 2 convs + 3 projection shortcuts
    assert len(convs) == 1 + 30 + 3
    assert sorted({c.out_channels for c in convs}) == [16, 160, 320, 640]
    assert _n_params(wrn) == 46_160_474  # the 46.2M of Madry et al.'s WRN-34-10
    assert sorted({c.out_channels for c in build_model("wrn-34-4", cifar).modules() if isinstance(c, nn.Conv2d)}) == [16, 64, 128, 256]


def test_wong_models_are_certifiable_shapes():
    cifar = DATASETS["cifar10"]
    cnn = build_model("wong-cnn", cifar)
    layers = [m for m in cnn[1] if not isinstance(m, nn.ReLU)]
    assert [type(m).__name__ for m in layers] == ["Conv2d", "Conv2d", "Flatten", "Linear", "Linear"]
    assert [layers[0].out_channels, layers[1].out_channels, layers[3].out_features] == [16, 32, 100]
    assert layers[0].kernel_size == (4, 4) and layers[0].stride == (2, 2)
    for model in (cnn, build_model("wong-resnet", cifar)):
        kinds = {type(m).__name__ for m in model.modules()}
        assert not kinds & {"BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"}, kinds
    res_convs = [m for m in build_model("wong-resnet", cifar).modules() if isinstance(m, nn.Conv2d)]
    assert sorted({c.out_channels for c in res_convs}) == [16, 32, 64]


def test_small_cnn_size():
    assert abs(_n_params(build_model("small-cnn", DATASETS["cifar10"])) - 620_000) < 5_000


def test_bad_names_and_shapes_are_user_errors():
    with pytest.raises(UserError, match="unknown model 'resnet-50'"):
        model_spec("resnet-50")
    with pytest.raises(UserError, match="depth 6n\\+4"):
        model_spec("wrn-33-10")
    tiny = DatasetInfo("tiny", (1, 4, 4), 10, (0.5,), (0.5,), "none", "")
    with pytest.raises(UserError, match="at least 8x8"):
        build_model("small-cnn", tiny)


def test_fast_cnn_takes_as_many_blocks_as_the_images_allow():
    from robustmia.errors import UserError

    with pytest.raises(UserError, match="fast-cnn with 3 blocks needs images of at least 9x9"):
        build_model("fast-cnn", DATASETS["digits"])  # 8x8: its default three blocks would pool to nothing
    out = build_model("fast-cnn", DATASETS["digits"], {"widths": [16, 32]}).eval()(torch.rand(2, 1, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()

import torch
import torch.nn.functional as F

from robustmia.data.transforms import augment, crop_flip


def test_crop_flip_matches_a_per_image_reference():
    x = torch.rand(16, 3, 32, 32)
    out = crop_flip(x, torch.Generator().manual_seed(7))
    # replay the same draws, then crop and flip image by image
    g = torch.Generator().manual_seed(7)
    dy = torch.randint(0, 9, (16,), generator=g)
    dx = torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(16):
        ref = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref)
    assert 0 < int(flip.sum()) < 16  # both branches were exercised


def test_no_augmentation_is_identity():
    x = torch.rand(4, 1, 8, 8)
    assert augment(x, "none", torch.Generator()) is x

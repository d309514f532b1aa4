"""One test per style family and per filter, on real pixels."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from cbs_obs.errors import ModelError, SettingsError, UnknownNameError
from cbs_obs.style import catalog
from cbs_obs.style.magenta import BUILTIN_STYLES


@pytest.fixture(scope="module")
def frame():
    """A synthetic but textured frame: gradients, a disc and stripes, odd size on purpose."""
    h, w = 123, 201
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, ((x // 10 + y // 10) % 2) * 200], -1).astype(np.uint8)
    cv2.circle(img, (100, 60), 30, (20, 200, 240), -1)
    return img


def test_26_builtin_styles_have_unique_readable_names():
    assert len(BUILTIN_STYLES) == 26 and len(set(BUILTIN_STYLES)) == 26
    assert all(n.replace("-", "").isalpha() and n == n.lower() for n in BUILTIN_STYLES)


def test_builtin_style_changes_pixels_and_keeps_size(frame):
    a = catalog.create("starry-blue").apply(frame)
    b = catalog.create("magenta:16").apply(frame)  # same style by index
    c = catalog.create("crimson-fire").apply(frame)
    assert a.shape == frame.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - frame).mean() > 20  # really styled
    assert np.abs(a.astype(int) - c).mean() > 10  # styles differ


def test_builtin_style_processing_size_caps_work(frame):
    big = cv2.resize(frame, (800, 490))
    out = catalog.create("starry-blue", max_side=200).apply(big)
    assert out.shape == big.shape


def test_image_as_style_caches_its_vector(frame, tmp_path):
    from cbs_obs import paths
    from cbs_obs.style.magenta import ArbitraryStyle

    style_img = tmp_path / "paint.png"
    cv2.imwrite(str(style_img), cv2.applyColorMap(frame, cv2.COLORMAP_JET))
    s1 = ArbitraryStyle(style_img)
    cached = list((paths.cache_dir() / "style_vectors").glob("*.npy"))
    assert len(cached) >= 1
    s2 = catalog.create(f"style-image:{style_img}")
    np.testing.assert_array_equal(s1.vector, s2.vector)
    out = s2.apply(frame)  # 123x201: not a multiple of 4, not 384
    assert out.shape == frame.shape and np.abs(out.astype(int) - frame).mean() > 10


def test_symbolic_transform_is_identical_to_shipped_at_384(frame):
    """Making H/W symbolic must not change the network: compare against the shipped file at 384x384."""
    from cbs_obs.models import registry
    from cbs_obs.models.device import ort_session
    from cbs_obs.style.magenta import _network

    x = np.random.default_rng(0).random((1, 384, 384, 3), np.float32)
    v = np.random.default_rng(1).standard_normal((1, 1, 1, 100)).astype(np.float32)
    shipped = ort_session(str(registry.ensure("arbitrary-transform")))
    names = [i.name for i in shipped.get_inputs()]
    a = shipped.run(None, {names[0]: x, names[1]: v})[0]
    b = _network("arbitrary-transform").run({"content_image": x, "style_vector": v})
    np.testing.assert_array_equal(a, b)


def _save_old_style_checkpoint(path, net):
    """Like pytorch/examples' early checkpoints: InstanceNorm running stats included."""
    state = net.state_dict()
    for name, mod in net.named_modules():
        if isinstance(mod, torch.nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(mod.num_features)
            state[f"{name}.running_var"] = torch.ones(mod.num_features)
    torch.save(state, path)


def test_johnson_loads_old_checkpoints_and_any_size(frame, tmp_path):
    from cbs_obs.style.johnson import JohnsonStyle, TransformerNet

    torch.manual_seed(0)
    net = TransformerNet().eval()
    _save_old_style_checkpoint(tmp_path / "old.pth", net)
    style = catalog.create(f"johnson:{tmp_path / 'old.pth'}")
    assert isinstance(style, JohnsonStyle)
    out = style.apply(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    # same weights, same maths: the loaded net reproduces the in-memory one on a multiple-of-4 crop
    crop = np.ascontiguousarray(frame[:120, :200])
    with torch.no_grad():
        x = torch.from_numpy(crop[:, :, ::-1].copy()).permute(2, 0, 1)[None].float()
        ref = net(x)[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()[:, :, ::-1]
    np.testing.assert_array_equal(style.apply(crop), ref)


def test_johnson_rejects_other_checkpoints(tmp_path):
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ModelError, match="not a TransformerNet checkpoint"):
        catalog.create(f"johnson:{tmp_path / 'other.pth'}")
    with pytest.raises(ModelError, match="does not exist"):
        catalog.create(f"johnson:{tmp_path / 'missing.pth'}")


def test_blur_smooths(frame):
    out = catalog.create("blur:15").apply(frame)
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var()
    assert out.shape == frame.shape and lap(out) < lap(frame) / 10


def test_pixelate_makes_flat_blocks(frame):
    out = catalog.create("pixelate:10").apply(np.ascontiguousarray(frame[:120, :200]))
    block = out[10:20, 30:40].reshape(-1, 3)
    assert (block == block[0]).all()
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 12 * 20


def test_solid_colour(frame):
    out = catalog.create("color:#00ff00").apply(frame)
    assert (out == [0, 255, 0]).all()
    assert (catalog.create("color:red").apply(frame) == [0, 0, 255]).all()  # BGR
    with pytest.raises(SettingsError, match="bad colour"):
        catalog.create("color:chartreuse-ish")


def test_image_replacement_covers_frame(frame, tmp_path):
    pic = np.zeros((50, 50, 3), np.uint8)
    pic[:, 25:] = 255
    cv2.imwrite(str(tmp_path / "bg.png"), pic)
    out = catalog.create(f"image:{tmp_path / 'bg.png'}").apply(frame)
    assert out.shape == frame.shape
    assert out[:, :80].max() == 0 and out[:, -80:].min() == 255


def test_cartoon_sketch_grey_none(frame):
    cartoon = catalog.create("cartoon").apply(frame)
    assert cartoon.shape == frame.shape and len(np.unique(cartoon.reshape(-1, 3), axis=0)) < 300
    sketch = catalog.create("sketch").apply(frame)
    assert (sketch[..., 0] == sketch[..., 1]).all() and sketch.mean() > frame.mean()
    grey = catalog.create("grey").apply(frame)
    assert (grey[..., 0] == grey[..., 2]).all()
    assert catalog.create("none").apply(frame) is frame


def test_bad_style_specs_say_what_is_valid():
    with pytest.raises(UnknownNameError) as e:
        catalog.create("starry-night")
    assert "starry-blue" in str(e.value) and "blur:25" in str(e.value)
    with pytest.raises(SettingsError, match="not a number"):
        catalog.create("blur:lots")
    with pytest.raises(SettingsError, match="radius"):
        catalog.create("blur:0")
    with pytest.raises(SettingsError, match="needs a file"):
        catalog.create("image:")

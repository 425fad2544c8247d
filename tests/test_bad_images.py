"""Step_2.images.read_image on real files written here: odd but valid images convert, broken ones say why."""
import io

import numpy as np
import pytest
from PIL import Image

from Step_2.images import BadImage, read_image


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95, **kwargs)
    return buf.getvalue()


def _gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    array = np.stack([np.tile(x, (height, 1)), np.full((height, width), 100, np.uint8),
                      np.tile(x[::-1], (height, 1))], axis=-1)
    return Image.fromarray(array, "RGB")


def _bad(path, max_pixels: int = 40_000_000) -> str:
    with pytest.raises(BadImage) as err:
        read_image(path, max_pixels)
    return str(err.value)


def test_plain_rgb_png_and_jpeg_need_no_conversion(tmp_path):
    for name, data in (("a.png", _png_bytes(_gradient())), ("a.jpg", _jpeg_bytes(_gradient()))):
        (tmp_path / name).write_bytes(data)
        raw, rgb, info = read_image(tmp_path / name)
        assert raw == data and rgb.mode == "RGB" and rgb.size == (64, 48)
        assert (info.width, info.height) == (64, 48) and not info.needs_conversion
        assert len(info.sha256) == 64


def test_truncated_png(tmp_path):
    data = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert "truncated" in _bad(tmp_path / "cut.png")


def test_truncated_jpeg(tmp_path):
    data = _jpeg_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert "truncated" in _bad(tmp_path / "cut.jpg")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty file" in _bad(tmp_path / "empty.png")


def test_text_file_named_png(tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image\n")
    assert "not an image" in _bad(tmp_path / "notes.png")


def test_missing_file_and_folder(tmp_path):
    assert "not found" in _bad(tmp_path / "nope.png")
    assert "folder" in _bad(tmp_path)


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours(tmp_path):
    left = np.zeros((40, 40, 3), np.uint8)
    left[:, :20] = (220, 30, 30)  # red half
    left[:, 20:] = (30, 30, 220)  # blue half
    (tmp_path / "cmyk.jpg").write_bytes(_jpeg_bytes(Image.fromarray(left).convert("CMYK")))
    _, rgb, info = read_image(tmp_path / "cmyk.jpg")
    assert info.mode == "CMYK" and info.needs_conversion
    assert rgb.mode == "RGB" and rgb.size == (40, 40)
    pixels = np.asarray(rgb).astype(int)
    assert np.abs(pixels[20, 5] - (220, 30, 30)).max() < 30
    assert np.abs(pixels[20, 35] - (30, 30, 220)).max() < 30


def test_palette_png_with_transparency_is_flattened_on_white(tmp_path):
    image = Image.new("P", (20, 10), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)  # index 0 black (made transparent), 1 red
    image.paste(1, (10, 0, 20, 10))  # right half red
    image.info["transparency"] = 0
    buf = io.BytesIO()
    image.save(buf, format="PNG", transparency=0)
    (tmp_path / "pal.png").write_bytes(buf.getvalue())
    _, rgb, info = read_image(tmp_path / "pal.png")
    assert info.mode == "P" and info.needs_conversion and rgb.mode == "RGB"
    pixels = np.asarray(rgb)
    assert tuple(pixels[5, 2]) == (255, 255, 255)  # transparent area -> white, not black
    assert tuple(pixels[5, 15]) == (200, 0, 0)


def test_16bit_grayscale_png_is_scaled_to_8_bit(tmp_path):
    array = np.zeros((4, 6), np.uint16)
    array[0, 0] = 65535
    array[1, 1] = 32768
    array[2, 2] = 256
    (tmp_path / "grey16.png").write_bytes(_png_bytes(Image.fromarray(array)))
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")  # stored as 16-bit
    _, rgb, info = read_image(tmp_path / "grey16.png")
    assert info.needs_conversion and rgb.mode == "RGB" and rgb.size == (6, 4)
    pixels = np.asarray(rgb)
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert abs(int(pixels[1, 1, 0]) - 128) <= 1
    assert pixels[2, 2, 0] == 1 and pixels[3, 3, 0] == 0


def test_16bit_grayscale_png_without_full_white_is_not_stretched(tmp_path):
    """A dim 16-bit image stays dim: scaling is by the 16-bit range, not by the image's own maximum."""
    array = np.full((4, 4), 32768, np.uint16)
    (tmp_path / "dim16.png").write_bytes(_png_bytes(Image.fromarray(array)))
    _, rgb, _ = read_image(tmp_path / "dim16.png")
    assert abs(int(np.asarray(rgb)[0, 0, 0]) - 128) <= 1


def test_rgba_transparent_area_becomes_white(tmp_path):
    array = np.zeros((10, 20, 4), np.uint8)
    array[:, :10] = (0, 0, 0, 0)  # fully transparent (black underneath)
    array[:, 10:] = (0, 128, 0, 255)  # opaque green
    (tmp_path / "rgba.png").write_bytes(_png_bytes(Image.fromarray(array, "RGBA")))
    _, rgb, info = read_image(tmp_path / "rgba.png")
    assert info.mode == "RGBA" and info.needs_conversion and rgb.mode == "RGB"
    pixels = np.asarray(rgb)
    assert tuple(pixels[5, 2]) == (255, 255, 255) and tuple(pixels[5, 15]) == (0, 128, 0)


@pytest.mark.parametrize("size", [(100, 100), (80, 80), (200, 200)])
def test_image_over_the_pixel_limit_is_rejected(tmp_path, size):
    """Below, at and above Pillow's own 2x bomb threshold: always BadImage naming the limit."""
    (tmp_path / "big.png").write_bytes(_png_bytes(Image.new("RGB", size, (10, 20, 30))))
    reason = _bad(tmp_path / "big.png", max_pixels=5000)
    assert "5000" in reason and "limit" in reason
    _, rgb, _ = read_image(tmp_path / "big.png", max_pixels=size[0] * size[1])  # exactly at the limit: fine
    assert rgb.size == size


def test_exif_rotated_jpeg_is_turned_upright(tmp_path):
    """Orientation 6: the stored picture is shown rotated 90° clockwise."""
    array = np.full((40, 60, 3), 255, np.uint8)  # stored 60 wide, 40 high
    array[:10, :10] = (255, 0, 0)  # red mark in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "rot.jpg").write_bytes(_jpeg_bytes(Image.fromarray(array), exif=exif.tobytes()))
    _, rgb, info = read_image(tmp_path / "rot.jpg")
    assert rgb.size == (40, 60) and (info.width, info.height) == (40, 60)  # width and height swapped
    assert info.needs_conversion
    pixels = np.asarray(rgb).astype(int)
    # Rotating 90° clockwise moves the top-left corner to the top-right.
    assert np.abs(pixels[4, 35] - (255, 0, 0)).max() < 40
    assert np.abs(pixels[4, 4] - (255, 255, 255)).max() < 40

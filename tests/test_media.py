"""Reading frames from images, folders and videos, and writing video (fourdhands.media)."""

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from fourdhands.errors import UserError
from fourdhands.media import Frame, VideoWriter, open_source, to_rgb8

W, H, FPS = 64, 48, 24.0
# 12 colours at least ~60 apart from each other in some channel, so lossy coding cannot
# make one frame look like another.
COLOURS = [(r, g, b) for r in (20, 230) for g in (20, 120, 230) for b in (40, 220)]


def _solid(colour, width=W, height=H):
    return np.full((height, width, 3), colour, np.uint8)


def _mean(frame: Frame):
    return frame.image.reshape(-1, 3).mean(axis=0)


def _write(path, images, fps=FPS):
    with VideoWriter(path, fps, (images[0].shape[1], images[0].shape[0])) as writer:
        for image in images:
            writer.write(image)
    return path


@pytest.fixture(scope="module")
def colour_video(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("video") / "colours.mp4", [_solid(c) for c in COLOURS])


def _assert_colours(frames, indices):
    assert [f.index for f in frames] == list(indices)
    for frame in frames:
        np.testing.assert_allclose(_mean(frame), COLOURS[frame.index], atol=6)


def test_video_round_trip(colour_video):
    with open_source(colour_video) as source:
        assert (source.kind, source.count, source.size, source.fps) == ("video", 12, (W, H), FPS)
        assert source.focal is None
        frames = list(source)
    _assert_colours(frames, range(12))
    assert [f.name for f in frames] == [f"frame_{i:06d}" for i in range(12)]
    np.testing.assert_allclose([f.time for f in frames], np.arange(12) / FPS, atol=1e-6)
    for frame in frames:
        assert frame.image.shape == (H, W, 3) and frame.image.dtype == np.uint8
        assert frame.image.flags.c_contiguous and frame.image.flags.writeable


def test_video_frames_from_start(colour_video):
    with open_source(colour_video) as source:
        _assert_colours(list(source.frames(start=7)), range(7, 12))
        assert list(source.frames(start=12)) == []


def test_seek_lands_on_a_later_keyframe(tmp_path):
    """With a keyframe every 4 frames, frames(7) seeks to frame 4 and must still start at 7."""
    path = tmp_path / "gop4.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25), options={"g": "4", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i, colour in enumerate(COLOURS):
            frame = av.VideoFrame.from_ndarray(_solid(colour), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with open_source(path) as source:
        frames = list(source.frames(start=7))
    _assert_colours(frames, range(7, 12))
    np.testing.assert_allclose([f.time for f in frames], np.arange(7, 12) / 25, atol=1e-6)


def test_mpeg4_when_h264_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(av, "codecs_available", av.codecs_available - {"libx264"})
    path = _write(tmp_path / "fallback.avi", [_solid(c) for c in COLOURS[:3]])
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    with open_source(path) as source:
        _assert_colours(list(source), range(3))


def test_odd_size_is_padded_with_black(tmp_path):
    # grey, because chroma is shared by 2x2 pixels and would bleed into the padding
    path = _write(tmp_path / "odd.mp4", [_solid((200, 200, 200), 65, 49)] * 2)
    with open_source(path) as source:
        assert source.size == (66, 50)
        image = next(iter(source)).image
    assert image.flags.c_contiguous
    assert np.abs(image[:47, :63].astype(int) - 200).max() <= 6
    assert image[:, -1].max() < 30 and image[-1, :].max() < 30


def test_video_rotation_is_applied(tmp_path):
    path = tmp_path / "portrait.mp4"
    image = np.zeros((H, W, 3), np.uint8)
    image[:16, :16] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display matrix")
        stream.set_display_rotation(-90)  # a phone's portrait video: turn clockwise to show
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with open_source(path) as source:
        assert source.size == (H, W)
        upright = next(iter(source)).image
    assert upright.shape == (W, H, 3)
    assert upright[:16, -16:].mean() > 200 and upright[:16, :16].mean() < 50


def test_writer_abort_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "out.mp4", FPS, (W, H)) as writer:
            writer.write(_solid(COLOURS[0]))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_frame_shape(tmp_path):
    with VideoWriter(tmp_path / "out.mp4", FPS, (W, H)) as writer:
        with pytest.raises(ValueError):
            writer.write(_solid(COLOURS[0], W + 2, H))
        writer.write(_solid(COLOURS[0]))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_close_ends_an_unfinished_iteration(colour_video):
    source = open_source(colour_video)
    frames = iter(source)
    next(frames)
    source.close()
    assert list(frames) == []
    with pytest.raises(ValueError):
        source.frames()


def test_folder_natural_order(tmp_path):
    Image.fromarray(_solid((255, 0, 0), 32, 24)).save(tmp_path / "frame10.png")
    Image.fromarray(_solid((0, 255, 0))).save(tmp_path / "frame2.png")
    Image.fromarray(_solid((0, 0, 255))).save(tmp_path / "Frame1.PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()
    with open_source(tmp_path) as source:
        assert (source.kind, source.count, source.size, source.fps) == ("folder", 3, (W, H), None)
        frames = list(source)
        assert [f.name for f in frames] == ["Frame1", "frame2", "frame10"]
        assert [f.time for f in frames] == [0.0, 1.0, 2.0]
        assert frames[2].image.shape == (24, 32, 3)
        assert frames[2].image[0, 0].tolist() == [255, 0, 0]
        assert [f.name for f in source.frames(start=2)] == ["frame10"]


def _transparent_p():
    image = Image.new("P", (4, 2), 3)
    image.putpalette([0, 0, 0, 10, 10, 10, 20, 20, 20, 250, 250, 250])
    image.info["transparency"] = 3
    return image


def _gradient16():
    return np.linspace(0, 65535, 64 * 48).round().astype(np.uint16).reshape(48, 64)


@pytest.mark.parametrize("make, expected", [
    (lambda: Image.new("L", (4, 2), 77), (77, 77, 77)),
    (lambda: Image.new("LA", (4, 2), (200, 0)), (0, 0, 0)),
    (lambda: Image.new("RGBA", (4, 2), (200, 100, 50, 128)), (100, 50, 25)),
    (lambda: Image.new("RGB", (4, 2), (9, 8, 7)).convert("P", palette=Image.Palette.ADAPTIVE),
     (9, 8, 7)),
    (lambda: _transparent_p(), (0, 0, 0)),
    (lambda: Image.new("1", (4, 2), 1), (255, 255, 255)),
    (lambda: Image.new("CMYK", (4, 2), (0, 255, 255, 0)), (255, 0, 0)),
    (lambda: Image.new("I;16B", (4, 2), 65535), (255, 255, 255)),
    (lambda: Image.new("I", (4, 2), 32768), (128, 128, 128)),
])
def test_to_rgb8_modes(make, expected):
    rgb = to_rgb8(make())
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous and rgb.flags.writeable
    assert rgb.reshape(-1, 3).tolist() == [list(expected)] * 8


def test_sixteen_bit_gradient_spans_eight_bits(tmp_path):
    Image.fromarray(_gradient16()).save(tmp_path / "depth.png")
    with open_source(tmp_path / "depth.png") as source:
        grey = next(iter(source)).image[:, :, 0].ravel()
    assert grey[0] == 0 and grey[-1] == 255
    assert np.all(np.diff(grey.astype(int)) >= 0)
    assert abs(grey.mean() - 127.5) < 1


@pytest.mark.parametrize("mode", ["L", "P", "1", "RGBA"])
def test_image_modes_from_files(tmp_path, mode):
    image = Image.fromarray(_solid((255, 255, 255), 8, 6)).convert(mode)
    image.save(tmp_path / f"{mode}.png")
    with open_source(tmp_path / f"{mode}.png") as source:
        assert (source.kind, source.count, source.size, source.fps) == ("image", 1, (8, 6), None)
        [frame] = list(source)
    assert (frame.index, frame.time, frame.name) == (0, 0.0, mode)
    assert frame.image.shape == (6, 8, 3) and frame.image.min() == 255


def _exif(orientation=None, exif_ifd=()):
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    exif.get_ifd(0x8769).update(exif_ifd)
    return exif


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :10] = 255  # top-left as stored; orientation 6 turns it clockwise to top-right
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=_exif(6), quality=95)
    with open_source(tmp_path / "phone.jpg") as source:
        assert source.size == (40, 60)
        image = next(iter(source)).image
    assert image.shape == (60, 40, 3)
    assert image[:8, -8:].mean() > 200 and image[:8, :8].mean() < 50


FOCAL_LENGTH, FOCAL_35MM, PLANE_X_RES, PLANE_UNIT, PIXEL_X = 0x920A, 0xA405, 0xA20E, 0xA210, 0xA002


@pytest.mark.parametrize("orientation, tags, focal", [
    (6, {FOCAL_35MM: 50}, 50 / 36 * 60),  # the long side is 60 whichever way up
    # 4.5 mm at 1000 px/cm (unit 3) is 450 px at the size the camera wrote (120 wide);
    # this file is half that size
    (None, {FOCAL_LENGTH: 4.5, PLANE_X_RES: 1000.0, PLANE_UNIT: 3, PIXEL_X: 120}, 225.0),
    (None, {FOCAL_LENGTH: 4.5}, None),
])
def test_exif_focal(tmp_path, orientation, tags, focal):
    Image.new("RGB", (60, 40)).save(tmp_path / "photo.jpg", exif=_exif(orientation, tags))
    with open_source(tmp_path / "photo.jpg") as source:
        assert source.focal == pytest.approx(focal)


def test_large_photo_opens(tmp_path):
    Image.new("L", (7000, 5000), 128).save(tmp_path / "big.jpg")
    with open_source(tmp_path / "big.jpg") as source:
        assert source.size == (7000, 5000)
        image = next(iter(source)).image
    assert image.shape == (5000, 7000, 3) and abs(int(image[2500, 3500, 0]) - 128) <= 1


def test_image_over_the_pixel_limit_is_refused(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # refused above twice this
    with pytest.raises(UserError, match="too large"):
        open_source(tmp_path / "huge.png")


def _noise_video(tmp_path, name, frames):
    rng = np.random.default_rng(0)
    return _write(tmp_path / name, [rng.integers(0, 256, (H, W, 3), np.uint8) for _ in range(frames)])


def _truncate(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def _garbage(path):
    path.write_bytes(b"this is not media at all\n" * 200)
    return path


def _missing(d):
    return d / "gone.jpg"


def _garbage_jpg(d):
    return _garbage(d / "garbage.jpg")


def _half_jpg(d):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(d / "half.jpg")
    return _truncate(d / "half.jpg", 0.5)


def _garbage_mp4(d):
    return _garbage(d / "garbage.mp4")


def _empty_mp4(d):
    (d / "empty.mp4").write_bytes(b"")
    return d / "empty.mp4"


def _zero_frame_mp4(d):
    VideoWriter(d / "zero.mp4", FPS, (W, H)).close()  # a valid header, no frames
    return d / "zero.mp4"


def _empty_folder(d):
    (d / "empty_dir").mkdir()
    (d / "empty_dir" / "notes.txt").write_text("no images here")
    return d / "empty_dir"


def _gif(d):
    return _garbage(d / "clip.gif")


@pytest.mark.parametrize("make, name, says", [
    (_missing, "gone.jpg", "no such file or folder"),
    (_garbage_jpg, "garbage.jpg", "not a readable image"),
    (_half_jpg, "half.jpg", "not a readable image"),
    (_garbage_mp4, "garbage.mp4", "not a readable video"),
    (_empty_mp4, "empty.mp4", "not a readable video"),
    (_zero_frame_mp4, "zero.mp4", "no video frames"),
    (_empty_folder, "empty_dir", "no images"),
    (_gif, "clip.gif", "unsupported file type"),
])
def test_open_errors(tmp_path, make, name, says):
    path = make(tmp_path)
    with pytest.raises(UserError) as caught:
        open_source(path)
    message = str(caught.value)
    assert name in message and says in message and "\n" not in message


def test_truncated_video_yields_frames_then_fails(tmp_path):
    path = _truncate(_noise_video(tmp_path, "cut.mp4", 30), 0.6)
    frames = []
    with open_source(path) as source:
        with pytest.raises(UserError) as caught:
            for frame in source:
                frames.append(frame.index)
    assert 0 < len(frames) < 30 and frames == list(range(len(frames)))
    message = str(caught.value)
    assert "cut.mp4" in message and f"frame {len(frames)}" in message and "\n" not in message

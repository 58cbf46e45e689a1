"""Hand detection: the boxes file, the detector factory, the multi-view geometry, and
MediaPipe on real photographs (skipped without mediapipe or without the samples)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from fourdhands.detect.boxes_file import BoxesDetector, load_boxes
from fourdhands.detect import by_side, make_detector
from fourdhands.detect.mediapipe_hands import (Hand, MediaPipeHands, View, cut_by_view, drop_fragments,
                                               hand_in_image, merge_hands, plan_views, to_detection,
                                               view_pixels)
from fourdhands.detect.detection import Detection
from fourdhands.errors import UserError

REAL = Path(__file__).resolve().parents[2] / "shared" / "samples" / "real"

JSON_BOXES = {"frames": {
    "0": [{"box": [100, 120, 40, 50], "hand": "right", "score": 0.9},
          {"box": [300, 110, 45, 55], "hand": "left"}],
    "img_0007.jpg": [{"box": [10.5, 20, 30, 40], "hand": "left", "score": 1}],
}}
CSV_BOXES = """frame,hand,cx,cy,sx,sy,score
0,right,100,120,40,50,0.9
0,left,300,110,45,55,1.0
img_0007.jpg,left,10.5,20,30,40,1
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text if isinstance(text, str) else json.dumps(text))
    return path


# --- boxes file ---------------------------------------------------------------------------


def test_json_and_csv_give_the_same_detections(tmp_path):
    a = load_boxes(_write(tmp_path, "b.json", JSON_BOXES))
    b = load_boxes(_write(tmp_path, "b.csv", CSV_BOXES))
    for boxes in (a, b):
        assert boxes.detections_for(0, "frame_000000") == [
            Detection((100.0, 120.0, 40.0, 50.0), "right", 1.0, 0.9),
            Detection((300.0, 110.0, 45.0, 55.0), "left", 1.0, 1.0)]
    assert a.detections_for(7, "img_0007") == b.detections_for(7, "img_0007") == [
        Detection((10.5, 20.0, 30.0, 40.0), "left", 1.0, 1.0)]


def test_lookup_by_name_then_index_and_missing_frames_have_no_hands(tmp_path):
    boxes = load_boxes(_write(tmp_path, "b.json", JSON_BOXES))
    assert len(boxes.detections_for(0, "anything")) == 2  # by index
    assert len(boxes.detections_for(5, "img_0007")) == 1  # by name, extension ignored
    assert boxes.detections_for(3, "img_0003") == []
    detector = BoxesDetector(boxes)
    image = np.zeros((4, 4, 3), np.uint8)
    assert detector.sides_known
    assert [len(detector.detect(image)) for _ in range(3)] == [2, 0, 0]
    assert len(detector.detect(image, "img_0007")) == 1  # position 3, but listed by name
    detector.reset()  # positions count over the whole input: a reset does not restart them
    assert detector.detect(image) == [] and detector.index == 5


def test_known_sides_are_taken_as_given():
    r1, r2 = Detection((1, 1, 2, 2), "right"), Detection((5, 5, 2, 2), "right")
    left = Detection((9, 9, 2, 2), "left")
    assert by_side([left, r1, r2]) == (r1, left)
    assert by_side([r2]) == (r2, None) and by_side([]) == (None, None)


def test_a_file_without_a_known_extension_is_sniffed(tmp_path):
    assert load_boxes(_write(tmp_path, "boxes.txt", JSON_BOXES)).detections_for(0, "")
    assert load_boxes(_write(tmp_path, "boxes.dat", CSV_BOXES)).detections_for(0, "")


def _hand(**change):
    hand = {"box": [100, 120, 40, 50], "hand": "right"}
    hand.update(change)
    return hand


MALFORMED = {
    "bad_json.json": ('{"frames": {\n  "0": [}\n}', "line 2"),
    "no_frames.json": ({"boxes": {}}, '"frames"'),
    "missing_box.json": ({"frames": {"0": [{"hand": "right"}]}}, "missing 'box'"),
    "missing_hand.json": ({"frames": {"0": [{"box": [1, 2, 3, 4]}]}}, "missing 'hand'"),
    "short_box.json": ({"frames": {"0": [_hand(box=[1, 2, 3])]}}, "4 numbers"),
    "zero_size.json": ({"frames": {"0": [_hand(box=[1, 2, 0, 4])]}}, "positive"),
    "negative_size.csv": ("frame,hand,cx,cy,sx,sy\n0,left,1,2,3,-4\n", "positive"),
    "hand_label.json": ({"frames": {"0": [_hand(hand="up")]}}, "'up'"),
    "nan.json": ('{"frames": {"0": [{"box": [NaN, 1, 2, 3], "hand": "left"}]}}', "finite"),
    "nan.csv": ("frame,hand,cx,cy,sx,sy\n0,left,nan,2,3,4\n", "finite"),
    "not_number.csv": ("frame,hand,cx,cy,sx,sy\n0,left,abc,2,3,4\n", "'abc'"),
    "columns.csv": ("frame,hand,cx,cy,sx,sy\n0,left,1,2,3,4\n1,left,1,2,3\n", "row 3"),
    "header.csv": ("0,left,1,2,3,4\n", "header"),
    "duplicate_hand.json": ({"frames": {"0": [_hand(), _hand()]}}, "2 right hands"),
    "duplicate_hand.csv": ("frame,hand,cx,cy,sx,sy\n0,left,1,2,3,4\n0,left,5,6,7,8\n", "2 left hands"),
    "duplicate_frame.json": ('{"frames": {"0": [], "0": []}}', "twice"),
    "score.json": ({"frames": {"0": [_hand(score=2)]}}, "[0, 1]"),
    "unknown_key.json": ({"frames": {"0": [_hand(scroe=1)]}}, "'scroe'"),
    "landmarks_count.json": ({"frames": {"0": [_hand(landmarks=[[1, 2]] * 20)]}}, "21 [x, y]"),
    "landmarks_value.json": ({"frames": {"0": [_hand(landmarks=[[1, 2]] * 20 + [[1, "x"]])]}}, "'x'"),
}


def test_landmarks_in_a_boxes_file_reach_the_detection(tmp_path):
    points = [[100 + i, 120 - 2 * i] for i in range(21)]
    boxes = load_boxes(_write(tmp_path, "b.json", {"frames": {"0": [_hand(landmarks=points), _hand(hand="left")]}}))
    right, left = boxes.detections_for(0, "")
    np.testing.assert_array_equal(right.landmarks, np.array(points, float))
    assert left.landmarks is None


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_boxes_files_are_one_line_user_errors(tmp_path, name):
    content, expected = MALFORMED[name]
    with pytest.raises(UserError) as e:
        load_boxes(_write(tmp_path, name, content))
    message = str(e.value)
    assert name in message and expected in message and "\n" not in message, message


def test_a_missing_boxes_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such boxes file"):
        load_boxes(tmp_path / "nope.json")


# --- factory ------------------------------------------------------------------------------


def test_the_factory_knows_its_detectors(tmp_path):
    with pytest.raises(UserError, match="unknown detector 'yolo'"):
        make_detector("yolo")
    with make_detector("boxes", path=_write(tmp_path, "b.json", JSON_BOXES)) as detector:
        assert detector.name == "boxes" and len(detector.detect(np.zeros((4, 4, 3), np.uint8))) == 2


def test_without_mediapipe_the_detector_says_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")] + ["mediapipe"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(UserError, match=r"pip install --no-deps mediapipe==0\.10\.21") as e:
        MediaPipeHands()
    assert "\n" not in str(e.value)


# --- multi-view geometry (no mediapipe needed) --------------------------------------------


def _square_hand(x0, y0, size, side="right", score=0.9):
    """A made-up hand: 21 distinct points spread over a ``size`` square at (x0, y0)."""
    t = np.linspace(0, 1, 21)
    keypoints = np.stack([x0 + size * t, y0 + size * (0.5 + 0.5 * np.sin(7 * t))], axis=1)
    return Hand(keypoints, side, score, score)


def test_a_hand_in_a_mirrored_view_maps_back_and_changes_side():
    view = View(100, 50, 300, 250, flip=True)
    found = np.array([[10.0, 20.0], [30.0, 40.0]])  # px of the mirrored 200 x 200 window
    hand = hand_in_image(found, "right", 0.8, view)
    # x in the window mirrors to 200 - x, then the window's corner is added
    np.testing.assert_allclose(hand.keypoints, [[290.0, 70.0], [270.0, 90.0]])
    assert hand.handedness == "left" and hand.score == hand.handedness_score == 0.8
    plain = hand_in_image(found, "right", 0.8, View(100, 50, 300, 250))
    np.testing.assert_allclose(plain.keypoints, [[110.0, 70.0], [130.0, 90.0]])
    assert plain.handedness == "right"


def test_view_pixels_and_the_mapping_back_agree():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    for view in (View(0, 0, 80, 60, True), View(-20, -15, 100, 75), View(-20, -15, 100, 75, True), View(30, 10, 70, 50)):
        pixels = view_pixels(image, view)
        assert pixels.shape == (view.y1 - view.y0, view.x1 - view.x0, 3) and pixels.flags.c_contiguous
        for vx, vy in ((5, 7), (pixels.shape[1] - 9, pixels.shape[0] - 4)):
            # the centre of view pixel (vx, vy) maps to the centre of the image pixel it shows
            (x, y), = hand_in_image(np.array([[vx + 0.5, vy + 0.5]]), "left", 1, view).keypoints
            inside = 0 <= x < 80 and 0 <= y < 60
            expected = image[int(y), int(x)] if inside else np.zeros(3, np.uint8)
            np.testing.assert_array_equal(pixels[vy, vx], expected)


def test_views_cover_large_images_with_overlapping_tiles():
    small = plan_views(640, 480, flip=True, zoom_out=1.5, tile_above=640)
    assert small == [View(0, 0, 640, 480), View(-160, -120, 800, 600),
                     View(0, 0, 640, 480, True), View(-160, -120, 800, 600, True)]
    views = plan_views(1920, 1080, flip=False, zoom_out=1.0, tile_above=640, tile_fraction=0.5)
    tiles = views[1:]
    assert all(v.x1 - v.x0 == v.y1 - v.y0 == 540 and not v.flip for v in tiles)
    xs, ys = sorted({v.x0 for v in tiles}), sorted({v.y0 for v in tiles})
    assert xs[0] == ys[0] == 0 and xs[-1] == 1920 - 540 and ys[-1] == 1080 - 540
    assert max(np.diff(xs).max(), np.diff(ys).max()) <= 0.55 * 540


def test_a_hand_cut_by_an_inner_tile_edge_is_not_kept_but_one_at_the_image_border_is():
    tile = View(400, 0, 800, 400)
    assert cut_by_view(_square_hand(380, 100, 60), tile, 1200, 800)  # across the tile's left edge
    assert cut_by_view(_square_hand(500, 350, 60), tile, 1200, 800)  # across its bottom edge
    assert not cut_by_view(_square_hand(500, 0, 60), tile, 1200, 800)  # at the image's top border
    assert not cut_by_view(_square_hand(500, 100, 60), tile, 1200, 800)


def test_merging_keeps_one_hand_per_group_with_the_best_score_and_the_majority_side():
    a = _square_hand(100, 100, 80, "right", 0.95)
    a_again = Hand(a.keypoints + 3, "right", 0.7, 0.7)
    a_mirror = Hand(a.keypoints - 2, "left", 0.6, 0.6)  # a mirrored view's doubtful label
    crossed = Hand(a.keypoints[::-1] + (10, 0), "left", 0.8, 0.8)  # same box, other landmarks
    merged = merge_hands([a_again, crossed, a_mirror, a])
    assert [(m.handedness, m.score, m.views) for m in merged] == [("right", 0.95, 3), ("left", 0.8, 1)]
    assert merged[0].handedness_score == pytest.approx((0.95 + 0.7 + 0.4) / 3)
    np.testing.assert_allclose(merged[0].keypoints, a.keypoints)  # the median of the three


def test_fragments_inside_a_larger_hand_are_dropped_and_crossed_hands_kept():
    big = _square_hand(100, 100, 200)
    fragment = _square_hand(95, 150, 40)  # pokes out of the big box by less than 10%
    crossed = _square_hand(150, 120, 180, "left")
    assert drop_fragments([fragment, big, crossed]) == [big, crossed]


def test_detections_are_clipped_to_the_image_and_scored_by_views():
    hand = Hand(np.array([[-10.0, 20.0], [50.0, 90.0]]), "left", 0.9, 0.8, views=2)
    d = to_detection(hand, 40, 80, looked=4)
    assert d.box == (20.0, 50.0, 40.0, 60.0) and d.handedness == "left"
    assert d.handedness_score == 0.9 and d.score == pytest.approx(0.4)
    assert to_detection(Hand(np.array([[50.0, 20.0], [60.0, 30.0]]), "left", 1, 1), 40, 80) is None


# --- MediaPipe on real photographs ---------------------------------------------------------

# hands a person sees in each photo (the file names describe the intended scenes; what is
# really in the frame was checked by eye)
VISIBLE = {
    "two_hands_gesturing_desk.jpg": 1,  # only the person's left hand is in the frame
    "people_signing_many_hands.jpg": 4,  # woman: OK sign, hand on knee; girl: fist, hand below it
    "two_hands_crossed_signing.jpg": 2,  # crossed in front of the chest, boxes overlapping
    "two_hands_trumpet_object.jpg": 2,  # fingers on the valves, the other around the casing
    "two_gloved_hands_pruning.jpg": 2,  # black gloves
    "two_hands_on_face_close.jpg": 2,  # fingers spread over the face, touching
    "huge_two_hands_far_barbell.jpg": 2,  # 4016 x 6016, hands ~200 px gripping the bar
}
# of those, what MediaPipe (0.10.21, the defaults here) does not find
MISSED = {
    "people_signing_many_hands.jpg": 1,  # the girl's lower hand, half hidden behind her fist
    "two_hands_trumpet_object.jpg": 1,  # the hand on the valves, in no view
    "two_gloved_hands_pruning.jpg": 2,  # gloved hands are not hands to its models
}


@pytest.fixture(scope="module")
def real_detections():
    pytest.importorskip("mediapipe")
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is not here")
    from PIL import Image

    found = {}
    with MediaPipeHands(mode="image") as detector:
        for name in VISIBLE:
            image = np.asarray(Image.open(REAL / name).convert("RGB"))
            found[name] = (image.shape, detector.detect(image))
    return found


@pytest.mark.parametrize("name", sorted(VISIBLE))
def test_mediapipe_finds_the_visible_hands(real_detections, name):
    (H, W, _), detections = real_detections[name]
    assert len(detections) >= VISIBLE[name] - MISSED.get(name, 0)
    for d in detections:
        cx, cy, sx, sy = d.box
        assert 0 <= cx - sx / 2 and cx + sx / 2 <= W and 0 <= cy - sy / 2 and cy + sy / 2 <= H
        assert 0.01 * max(H, W) < max(sx, sy) < 0.5 * max(H, W)
        assert d.handedness in ("right", "left") and 0 < d.score <= 1 and 0.5 <= d.handedness_score <= 1


def test_mediapipe_handedness_is_the_persons_side(real_detections):
    (_, W, _), desk = real_detections["two_hands_gesturing_desk.jpg"]
    assert desk[0].handedness == "left" and desk[0].box[0] > W / 2
    _, face = real_detections["two_hands_on_face_close.jpg"]
    by_x = sorted(face[:2], key=lambda d: d.box[0])  # she faces the camera: her right is on the image's left
    assert [d.handedness for d in by_x] == ["right", "left"]
    _, people = real_detections["people_signing_many_hands.jpg"]
    ok_sign = min(people, key=lambda d: np.hypot(d.box[0] - 320, d.box[1] - 248))
    assert ok_sign.handedness == "right"
    _, barbell = real_detections["huge_two_hands_far_barbell.jpg"]
    by_x = sorted(barbell, key=lambda d: d.box[0])  # seen from behind: his left is on the image's left
    assert [d.handedness for d in by_x] == ["left", "right"]


def test_mediapipe_video_mode_tracks_and_resets():
    pytest.importorskip("mediapipe")
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is not here")
    from PIL import Image

    image = np.asarray(Image.open(REAL / "two_hands_gesturing_desk.jpg").convert("RGB").resize((640, 360)))
    with MediaPipeHands(mode="video") as detector:
        assert detector.views(640, 360) == [View(0, 0, 640, 360)]
        first = detector.detect(image)
        again = detector.detect(image)  # second frame: from the tracked landmarks
        detector.reset()
        fresh = detector.detect(image)
    assert len(first) == len(again) == len(fresh) == 1 and first[0].handedness == "left"
    assert np.allclose(first[0].box, fresh[0].box, atol=1.0)

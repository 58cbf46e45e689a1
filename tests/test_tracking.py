"""Left/right tracking: identities survive label flips and crossings, missing hands stay
empty, extra hands are dropped and counted."""

from fourdhands.detect import Detection, HandTracker


def det(x, y, side, score=0.95, det_score=0.9, size=60.0):
    return Detection((x, y, size, size), side, score, det_score)


def run(frames, **kw):
    tracker = HandTracker(**kw)
    return tracker, [tracker.update(f) for f in frames]


def test_a_few_flipped_labels_do_not_swap_the_hands():
    frames = []
    for t in range(30):
        flip = 10 <= t < 13  # the detector swaps both labels for three frames
        frames.append([det(200 + t, 300, "left" if flip else "right"), det(500 - t, 300, "right" if flip else "left")])
    _, out = run(frames)
    for t, (right, left) in enumerate(out):
        assert right.box[0] == 200 + t and left.box[0] == 500 - t, t


def test_identities_follow_the_motion_through_a_crossing():
    frames = []
    for t in range(40):
        xr, xl = 200 + 10 * t, 590 - 10 * t  # they cross around t = 19.5
        crossing = 17 <= t <= 22
        # while overlapping, the detector's labels follow image position, i.e. are wrong
        frames.append([det(xr, 300, "left" if crossing and xr > xl else "right"),
                       det(xl, 310, "right" if crossing and xr > xl else "left")])
    _, out = run(frames)
    for t, (right, left) in enumerate(out):
        assert right.box[0] == 200 + 10 * t and left.box[0] == 590 - 10 * t, t


def test_a_missing_hand_stays_empty_then_comes_back_as_itself():
    frames = []
    for t in range(20):
        hands = [det(200 + 2 * t, 300, "right")]
        if not 5 <= t < 9:
            hands.append(det(450, 300, "left"))
        frames.append(hands)
    _, out = run(frames)
    for t, (right, left) in enumerate(out):
        assert right is not None and right.box[0] == 200 + 2 * t
        assert (left is None) == (5 <= t < 9), t
        if left is not None:
            assert left.box[0] == 450


def test_more_than_two_hands_keeps_the_two_most_confident():
    frames = [[det(100, 100, "right", det_score=0.9), det(400, 100, "left", det_score=0.8),
               det(700, 100, "left", det_score=0.3)] for _ in range(5)]
    tracker, out = run(frames)
    assert tracker.dropped == 5
    assert all(r.box[0] == 100 and l.box[0] == 400 for r, l in out)


def test_single_hand_fills_its_own_slot_only():
    _, out = run([[det(300, 300, "left")] for _ in range(6)])
    assert all(r is None and l is not None for r, l in out)


def test_a_wrong_first_label_is_corrected_by_later_evidence():
    frames = [[det(300 + t, 300, "left" if t < 2 else "right")] for t in range(12)]
    _, out = run(frames)
    assert out[0][1] is not None  # at first it looks like a left hand
    assert out[-1][0] is not None and out[-1][1] is None  # later evidence says right

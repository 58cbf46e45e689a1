"""The two hands' order, everywhere: hand axis index 0 is the right hand, 1 the left
(the person's anatomical sides, not the image's; see ``DESIGN.md``)."""

SIDES = ("right", "left")

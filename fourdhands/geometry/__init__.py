"""Geometry at the bottom of the package: rotations, pinhole and crop cameras, boxes and crops.

Pure torch functions, batched over leading dims; see each module for its conventions.
"""

from .camera import (
    CROP_FOCAL,
    CROP_SIZE,
    crop_cam_to_full_translation,
    crop_cam_to_translation,
    default_focal,
    full_translation_to_crop_cam,
    intrinsics,
    project,
)
from .crop import (
    CROP_HW,
    apply_affine,
    box_to_crop_affine,
    crop_image,
    fit_aspect,
    invert_affine,
    keypoints_to_box,
)
from .rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

__all__ = [
    "CROP_FOCAL",
    "CROP_HW",
    "CROP_SIZE",
    "apply_affine",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "box_to_crop_affine",
    "crop_cam_to_full_translation",
    "crop_cam_to_translation",
    "crop_image",
    "default_focal",
    "fit_aspect",
    "full_translation_to_crop_cam",
    "intrinsics",
    "invert_affine",
    "keypoints_to_box",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "project",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "rot6d_to_matrix",
]

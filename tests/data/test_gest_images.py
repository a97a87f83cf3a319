import numpy as np

from gest_showcases.data import ImageStatus, check_images, image_path, probe_image


def test_probe_image_tells_ok_missing_and_unreadable(gest_files):
    files = gest_files
    ok = files.image("ok")
    truncated = files.truncated_image("cut")
    (files.images / "text.jpg").write_text("not an image")
    (files.images / "empty.jpg").write_bytes(b"")
    assert image_path(files.images, "ok") == ok
    assert probe_image(ok) == ImageStatus.OK
    assert probe_image(truncated) == ImageStatus.UNREADABLE
    assert probe_image(files.images / "text.jpg") == ImageStatus.UNREADABLE
    assert probe_image(files.images / "empty.jpg") == ImageStatus.UNREADABLE
    assert probe_image(files.images / "gone.jpg") == ImageStatus.MISSING


def test_check_images_in_parallel_matches_one_process(gest_files):
    files = gest_files
    pics = [files.pic(i) for i in range(600)]
    for i, pic in enumerate(pics):
        if i % 3 == 0:
            files.image(pic, seed=i)
        elif i % 3 == 1:
            files.truncated_image(pic)
    expected = np.array(
        [[ImageStatus.OK, ImageStatus.UNREADABLE, ImageStatus.MISSING][i % 3] for i in range(600)]
    )
    np.testing.assert_array_equal(check_images(files.images, pics), expected)
    np.testing.assert_array_equal(check_images(files.images, pics, num_proc=2), expected)
    assert check_images(files.images, []).shape == (0,)

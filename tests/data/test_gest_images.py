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


def test_links_out_of_the_folder_are_outside_as_the_path_policy_says_one_photo_at_a_time(gest_files, tmp_path):
    """`check_images` and `photo_files` resolve the folder once (`resolve_image_paths`); the oracle is the policy
    itself, `resolve_image_path`, called on each photo's file alone."""
    from gest_showcases.data.images import photo_files, resolve_image_path
    from gest_showcases.errors import InputError

    files = gest_files
    files.image("plain")
    secret = tmp_path / "secret.jpg"
    files.image("copied")
    secret.write_bytes((files.images / "copied.jpg").read_bytes())
    (files.images / "out.jpg").symlink_to(secret)  # a link out of the folder
    (files.images / "in.jpg").symlink_to(files.images / "plain.jpg")  # a link inside it is the folder's
    (files.images / "dangling.jpg").symlink_to(tmp_path / "nothing.jpg")
    (tmp_path / "up.jpg").write_bytes(secret.read_bytes())
    pics = ["plain", "out", "in", "dangling", "gone", "../up", "x" * 300]

    def outside_by_the_policy(pic):
        try:
            resolve_image_path(image_path(".", pic), [files.images])
        except InputError:
            return True
        except OSError:  # a name too long for the file system: no file, reported missing
            return False
        return False

    expected_outside = [outside_by_the_policy(pic) for pic in pics]
    assert expected_outside == [False, True, False, True, False, True, False]
    statuses = check_images(files.images, pics)
    assert [status == ImageStatus.OUTSIDE for status in statuses] == expected_outside
    assert statuses[0] == statuses[2] == ImageStatus.OK and statuses[4] == statuses[6] == ImageStatus.MISSING
    assert list(photo_files(files.images, pics)) == [p for p, out in zip(pics, expected_outside, strict=True) if not out]

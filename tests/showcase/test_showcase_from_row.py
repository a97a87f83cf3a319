"""`ShowcaseInput.from_row`: a built dataset's row -> the showcase request (the demo, `showcase` and `serve` use it)."""

from gest_showcases.data.folder import dataset_image_paths, read_rows
from gest_showcases.pipeline import ShowcaseInput


def test_a_row_gives_its_business_pool_and_its_stored_history(built_dataset):
    rows = read_rows(built_dataset, "s1")
    paths = dataset_image_paths(built_dataset, rows, built_dataset.parent / "images")
    row = next(row for row in rows if row["review_id"] == "u2_b1")
    images = (built_dataset.parent / "images").resolve()
    # Oracle: the request spelled out from the fixture's REVIEWS (u2's other review is u2_b2, with pic5).
    assert ShowcaseInput.from_row(row, paths) == ShowcaseInput(
        candidates={pic: images / f"{pic}.jpg" for pic in ["pic0", "pic1", "pic3", "pic4", "pic6", "pic7"]},
        history_texts=["Noodles and tea. Friendly staff!"],
        history_images=[images / "pic5.jpg"],
        user_id="u2",
        business_id="b1",
    )


def test_a_row_shaped_mapping_may_leave_out_the_history_and_repeat_photos(tmp_path):
    paths = {"a": tmp_path / "a.jpg", "b": tmp_path / "b.jpg"}
    request = ShowcaseInput.from_row({"candidate_pics": ["b", "a", "b"], "business_id": "x"}, paths)
    assert list(request.candidates.items()) == [
        ("b", paths["b"]),
        ("a", paths["a"]),
    ]  # first-seen order, once
    assert (list(request.history_texts), list(request.history_images)) == ([], [])
    assert (request.user_id, request.business_id) == (None, "x")

import json

import pytest

from gest_showcases.data import (
    DropReport,
    Review,
    detect_format,
    read_gest_filtered,
    read_gest_raw,
    read_google_local,
    read_reviews,
    readers,
)


def _raw_lines(files):
    ok = files.record(1, 1, "a fine plate of noodles", [files.pic(1)])
    return [
        ok,
        "",  # blank lines are not records
        '{"business_id": "00000000000000000000000a", "user_id": ',  # malformed JSON
        b'{"business_id": "00000000000000000000000b", "user_id": "1", "review_text": "caf\xe9"}',  # latin-1 byte
        {"user_id": files.user(2), "review_text": "no business"},  # missing field
        files.record(3, 3, "bad rating", rating=9),  # invalid field
        {**files.record(4, 4, "pics not a list"), "pics": "AF1Qip"},  # invalid field
        {**files.record(5, 5, "bad pic"), "pics": ["../../etc/passwd"]},  # invalid field
        '{"business_id": "00000000000000000000000c", "user_id": "1", "review_text": "\\udc80 lone"}',
        "[1, 2, 3]",  # valid JSON, but not a record object: malformed
        {**files.record(6, 6, None, [{"id": files.pic(6)}, files.pic(6)]), "rating": None},
        files.record(7, 7, 'emoji \\ud83d\\ude00 fine "quoted"'),
    ]


def test_read_gest_raw_yields_reviews_and_counts_every_bad_line(gest_files):
    path = gest_files.jsonl("image_review_all.json", _raw_lines(gest_files))
    report = DropReport()
    reviews = list(read_gest_raw(path, report))
    assert reviews == [
        Review(
            gest_files.user(1), gest_files.business(1), 5, "a fine plate of noodles", (gest_files.pic(1),)
        ),
        Review(
            gest_files.user(6), gest_files.business(6), None, "", (gest_files.pic(6),)
        ),  # pic listed twice
        Review(gest_files.user(7), gest_files.business(7), 5, 'emoji \\ud83d\\ude00 fine "quoted"', ()),
    ]
    assert report.to_dict() == {
        "invalid field": {
            "count": 3,
            "examples": ["image_review_all.json:6", "image_review_all.json:7", "image_review_all.json:8"],
        },
        "malformed JSON": {"count": 2, "examples": ["image_review_all.json:3", "image_review_all.json:10"]},
        "missing field": {"count": 1, "examples": ["image_review_all.json:5"]},
        "non-UTF-8 bytes": {"count": 2, "examples": ["image_review_all.json:4", "image_review_all.json:9"]},
    }


def test_json_surrogate_escapes_decode_or_are_dropped(gest_files):
    pair = '{"business_id": "b", "user_id": "1", "review_text": "ok \\ud83d\\ude00"}'
    lone = '{"business_id": "b", "user_id": "2", "review_text": "bad \\ud83d"}'
    report = DropReport()
    reviews = list(read_gest_raw(gest_files.jsonl("x.json", [pair, lone]), report))
    assert [review.review_text for review in reviews] == ["ok \U0001f600"]
    assert report.counts == {"non-UTF-8 bytes": 1}


def test_read_gest_raw_reads_gzip_by_content(gest_files):
    path = gest_files.jsonl("image_review_all.json", [gest_files.record(1, 1, "a b c d e")], gz=True)
    assert [review.user_id for review in read_gest_raw(path)] == [gest_files.user(1)]


def _filtered_record(files, user, business, text, pics=(), history=()):
    return {**files.record(user, business, text, pics), "history_reviews": [list(pair) for pair in history]}


@pytest.mark.parametrize("indent", [None, 2])
def test_read_gest_filtered_streams_splits_and_history(gest_files, monkeypatch, indent):
    # A window of a few characters forces every record across many refills of the buffer.
    monkeypatch.setattr(readers, "_CHUNK_BYTES", 7)
    files = gest_files
    history = [
        (f"{files.user(1)}_{files.business(9)}", "older review"),
        (f"{files.user(1)}_{files.business(8)}", None),
    ]
    path = files.filtered(
        "filter_all_t.json",
        {
            "train": [_filtered_record(files, 1, 1, "The pho was great.", [files.pic(1)], history)],
            "val": [
                _filtered_record(files, 2, 2, "Café crème, très bon ☕", [{"url": [files.url(files.pic(2))]}])
            ],
            "test": [_filtered_record(files, 3, 3, "Ok."), {"user_id": files.user(4)}],
        },
        indent=indent,
    )
    report = DropReport()
    reviews = list(read_gest_filtered(path, report))
    assert [(review.split, review.user_id) for review in reviews] == [
        ("train", files.user(1)),
        ("validation", files.user(2)),
        ("test", files.user(3)),
    ]
    assert reviews[0].history_reviews == ((history[0][0], "older review"), (history[1][0], ""))
    assert reviews[1].review_text == "Café crème, très bon ☕"
    assert reviews[1].pics == (files.pic(2),)
    assert report.to_dict() == {"missing field": {"count": 1, "examples": ["filter_all_t.json:test[1]"]}}


def test_read_gest_filtered_counts_bad_bytes_and_stops_at_a_syntax_error(gest_files, monkeypatch):
    monkeypatch.setattr(readers, "_CHUNK_BYTES", 16)
    files = gest_files
    good = json.dumps(_filtered_record(files, 1, 1, "good one"))
    bad_bytes = json.dumps(_filtered_record(files, 2, 2, "BAD")).replace("BAD", "caf\udce9", 1)
    text = '{"train": [' + good + ", " + bad_bytes + ', {"user_id": 1,, }], "val": [' + good + "]}"
    path = files.root / "filter_all_t.json"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    report = DropReport()
    reviews = list(read_gest_filtered(path, report))
    assert [review.user_id for review in reviews] == [files.user(1)]
    assert report.to_dict() == {
        "malformed JSON": {"count": 1, "examples": ["filter_all_t.json:train[2]"]},
        "non-UTF-8 bytes": {"count": 1, "examples": ["filter_all_t.json:train[1]"]},
    }


def test_read_gest_filtered_truncated_file_keeps_what_came_before(gest_files):
    files = gest_files
    text = json.dumps({"train": [_filtered_record(files, 1, 1, "one"), _filtered_record(files, 2, 2, "two")]})
    path = files.root / "filter_all_t.json"
    path.write_text(text[: len(text) - 30])
    report = DropReport()
    assert [review.user_id for review in read_gest_filtered(path, report)] == [files.user(1)]
    assert report.counts == {"malformed JSON": 1}


def _google_files(files, gz):
    restaurant, shop = "0x80c2c:0x1a", "0x80c2c:0x2b"
    meta = files.jsonl(
        "meta-Test.json",
        [
            {"name": "Pho House", "gmap_id": restaurant, "category": ["Vietnamese restaurant", "Soup"]},
            {"name": "Tools", "gmap_id": shop, "category": ["Hardware store"]},
            {"name": "No category", "gmap_id": "0x1:0x1", "category": None},
        ],
        gz=gz,
    )
    photo = files.pic(1)
    reviews = files.jsonl(
        "review-Test.json",
        [
            {
                "user_id": files.user(1),
                "name": "Jane Doe",
                "time": 1_600_000_000_123,
                "rating": 4,
                "text": "Rich broth and fresh herbs",
                "pics": [
                    {"url": [files.url(photo), files.url(photo) + "-s"]},
                    {"url": [files.url(files.pic(2))]},
                ],
                "resp": {"time": 1_600_000_100_000, "text": "Thanks!"},
                "gmap_id": restaurant,
            },
            {
                "user_id": files.user(2),
                "name": "Joe",
                "time": 1,
                "rating": 5,
                "text": None,
                "pics": [{"url": [files.url(files.pic(3))]}],
                "resp": None,
                "gmap_id": restaurant,
            },
            {
                "user_id": files.user(3),
                "name": "Ann",
                "time": 2,
                "rating": 1,
                "text": "bad hammer",
                "pics": [{"url": [files.url(files.pic(4))]}],
                "resp": None,
                "gmap_id": shop,
            },
            {
                "user_id": files.user(4),
                "name": "Text Only",
                "time": 3,
                "rating": 3,
                "text": "no photo",
                "pics": None,
                "resp": None,
                "gmap_id": restaurant,
            },
            {
                "user_id": files.user(5),
                "name": "Bad",
                "time": "yesterday",
                "rating": 3,
                "text": "x",
                "pics": None,
                "resp": None,
                "gmap_id": restaurant,
            },
        ],
        gz=gz,
    )
    return reviews, meta


@pytest.mark.parametrize("gz", [False, True])
def test_read_google_local_keeps_restaurant_reviews_with_photos(gest_files, gz):
    review_path, meta_path = _google_files(gest_files, gz)
    report = DropReport()
    reviews = list(read_google_local([review_path], [meta_path], report))
    assert reviews == [
        Review(
            gest_files.user(1),
            "0x80c2c:0x1a",
            4,
            "Rich broth and fresh herbs",
            (gest_files.pic(1), gest_files.pic(2)),
            time=1_600_000_000_123,
        ),
        Review(gest_files.user(2), "0x80c2c:0x1a", 5, "", (gest_files.pic(3),), time=1),
    ]
    assert report.counts == {"not a restaurant": 1, "no image": 1, "invalid field": 1}
    assert "Jane" not in repr(reviews)


def test_google_local_needs_meta(gest_files):
    review_path, _ = _google_files(gest_files, gz=False)
    with pytest.raises(ValueError, match="meta"):
        list(read_google_local([review_path], []))
    with pytest.raises(ValueError, match="meta"):
        list(read_reviews([review_path]))


def test_detect_format_and_read_reviews_dispatch(gest_files):
    files = gest_files
    review_path, meta_path = _google_files(files, gz=True)
    raw = files.jsonl("image_review_all.json", ["{broken", files.record(1, 1, "a b c d e")])
    filtered = files.filtered("filter_all_t.json", {"val": [_filtered_record(files, 1, 1, "x")]}, indent=4)
    assert detect_format(raw) == "gest_raw"
    assert detect_format(filtered) == "gest_filtered"
    assert detect_format(review_path) == "google_local_review"
    assert detect_format(meta_path) == "google_local_meta"
    with pytest.raises(ValueError, match="not a Gest"):
        detect_format(files.jsonl("other.json", [{"a": 1}]))
    # Meta files may come among the inputs; the formats mix except for filter_all_t.json.
    reviews = list(read_reviews([raw, review_path, meta_path]))
    assert [review.business_id for review in reviews] == [files.business(1), "0x80c2c:0x1a", "0x80c2c:0x1a"]
    with pytest.raises(ValueError, match="cannot be mixed"):
        list(read_reviews([filtered, raw]))


def test_a_first_record_longer_than_the_sniffed_head_and_a_byte_order_mark_are_read(gest_files):
    """Session 28's audit: a first review of 72,000 characters made a valid file "not a Gest file" (only complete lines
    of the first 64 KiB were parsed), and a UTF-8 byte order mark made filter_all_t.json unreadable and dropped the
    first record of a JSON Lines file as malformed."""
    files = gest_files
    long_first = files.jsonl("long.json", [files.record(1, 1, "word " * 15_000), files.record(2, 2, "a b c d e")])
    assert detect_format(long_first) == "gest_raw"
    assert [len(review.review_text) for review in read_reviews([long_first])] == [75_000, 9]
    plain = files.jsonl("plain.json", [files.record(1, 1, "a b c d e"), files.record(2, 2, "f g h i j")])
    with_bom = files.root / "bom.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    report = DropReport()
    assert detect_format(with_bom) == "gest_raw"
    assert list(read_gest_raw(with_bom, report)) == list(read_gest_raw(plain)) and not report.counts
    filtered = files.filtered("filter_all_t.json", {"val": [_filtered_record(files, 1, 1, "x")]})
    filtered_bom = files.root / "filter_bom.json"
    filtered_bom.write_bytes(b"\xef\xbb\xbf" + filtered.read_bytes())
    assert detect_format(filtered_bom) == "gest_filtered"
    assert list(read_gest_filtered(filtered_bom)) == list(read_gest_filtered(filtered))

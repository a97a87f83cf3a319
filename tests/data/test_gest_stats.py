import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gest_showcases import cli
from gest_showcases.data import build_dataset, dataset_stats, format_markdown
from gest_showcases.data.stats import word_counts


def test_word_counts_match_str_split():
    texts = [
        "",
        "one",
        "  two  words ",
        "tab\tand\nnew line",
        "nbsp\u00a0joins? no\u2003em",
        "a\x1cb\u3000c",
        "ça va, très bien",
    ]
    assert word_counts(pa.array(texts)).tolist() == [len(text.split()) for text in texts]


def _oracle(folder, config, split_files):
    tables = [pq.read_table(path) for path in split_files]
    rows = [row for table in tables for row in table.to_pylist()]
    text = "explanation" if config == "s2" else "review_text"
    return {
        "#Image": len({pic for row in rows for pic in row["pics"]}),
        "#Review": len(rows),
        "#User": len({row["user_id"] for row in rows}),
        "#Bus.": len({row["business_id"] for row in rows}),
        "Avg. R. Len.": pytest.approx(sum(len(row[text].split()) for row in rows) / len(rows)),
    }


def test_stats_match_a_row_by_row_count(gest_files, capsys):
    files = gest_files
    records = []
    for user in range(12):
        for business in range(3):
            pics = [files.pic(user * 10 + business), files.pic(business)]  # pic(business) shared
            records.append(
                files.record(user, business + user % 2, f"{'word ' * (5 + user)} end. Tasty!", pics)
            )
    for pic in {p for record in records for p in record["pics"]}:
        files.image(pic)
    source = files.jsonl("image_review_all.json", records)
    out = files.root / "gest"
    build_dataset([source], files.images, out, explanation_filter=lambda sentences, paths: sentences[-1:])
    rows = dataset_stats(out)
    by_key = {(row["Config"], row["Split"]): row for row in rows}
    assert [key for key in by_key if key[1] == "all"] == [("s2", "all"), ("s1", "all")]
    for config in ("raw", "s1", "s2"):
        splits = sorted(path.name.split("-")[0] for path in (out / config).glob("*.parquet"))
        for split in splits:
            expected = _oracle(out, config, [out / config / f"{split}-00000-of-00001.parquet"])
            assert {k: by_key[config, split][k] for k in expected} == expected
        if config != "raw":
            expected = _oracle(out, config, sorted((out / config).glob("*.parquet")))
            assert {k: by_key[config, "all"][k] for k in expected} == expected
    assert by_key["s2", "all"]["Avg. R. Len."] == 1.0  # "Tasty!"

    table = format_markdown(rows)
    assert table.splitlines()[0] == "| Config | Split | #Image | #Review | #User | #Bus. | Avg. R. Len. |"
    assert cli.main(["stats", str(out)]) == 0
    assert capsys.readouterr().out.strip() == table
    assert cli.main(["stats", "--folder", str(out)]) == 0
    assert capsys.readouterr().out.strip() == table
    with pytest.raises(ValueError, match="README"):
        dataset_stats(files.root)

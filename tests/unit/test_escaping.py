"""The filters that keep text from a submission inert in Markdown."""

from pathlib import Path

from grader.records.escape import (
    bar,
    fenced,
    hide_paths,
    html_text,
    inert,
    inline,
    number,
    safe_name,
    thin,
)


def test_a_code_block_is_fenced_longer_than_any_backticks_inside_it():
    text = "print('```')\n````"
    block = fenced(text, "python")
    assert block.startswith("`````python\n") and block.endswith("\n`````")


def test_inline_code_cannot_be_broken_out_of():
    assert inline("a ` b") == "``a ` b``"
    assert inline("`x`") == "`` `x` ``"
    assert inline("two\nlines") == "`two lines`"


def test_safe_names_keep_only_harmless_characters():
    assert safe_name("alice") == "alice"
    assert safe_name("<script>@bob") == "_script__bob"
    assert safe_name("") == "_"
    assert len(safe_name("x" * 100)) == 60


def test_bars_and_numbers_for_tables():
    assert bar(0.5, width=4) == "██░░"
    assert bar(1.7, width=2) == "██"
    assert bar(None) == ""
    assert number(None) == "—"
    assert number(0.12345) == "0.1235"


def test_long_curves_are_thinned_evenly_keeping_both_ends():
    values = list(range(200))
    thinned = thin(values, limit=5)
    assert thinned[0] == 0 and thinned[-1] == 199 and len(thinned) == 5
    assert thin([1, 2, 3]) == [1, 2, 3]


def test_prose_from_a_submission_makes_no_markdown_of_its_own():
    assert inert("## ✅ passed 10/10") == "\\## ✅ passed 10/10"  # no heading
    assert inert("1. first") == "1\\. first" and inert("- item") == "\\- item"  # no list
    assert inert("[x](http://e.x) ![i](y)") == "\\[x\\](http:\u200d//e.x) !\\[i\\](y)"
    assert inert("<b>bold</b> &amp;") == "\\<b>bold\\</b> \\&amp;"  # no HTML, no entity
    assert inert("**a** _b_ ~~c~~ $x$") == "\\*\\*a\\*\\* \\_b\\_ \\~\\~c\\~\\~ \\$x\\$"
    assert inert("a | b") == "a \\| b"  # no table cell
    assert inert("line\n## two") == "line ## two"  # one line: "##" inside it starts nothing


def test_mentions_issue_references_and_urls_are_broken_with_a_zero_width_joiner():
    zwj = "\u200d"
    assert inert("@octocat @org/team") == f"@{zwj}octocat @{zwj}org/team"
    assert inert("#12 GH-3 repo#4") == f"\\#{zwj}12 GH{zwj}-3 repo#{zwj}4"
    assert inert("https://evil.example www.x.y") == f"https:{zwj}//evil.example www{zwj}.x.y"
    assert inert("@ alone, # alone") == "@ alone, # alone"  # nothing to neutralise


def test_code_spans_in_prose_stay_code_and_table_cells_stay_whole():
    assert inert("`model` is a `str`") == "`model` is a `str`"
    assert inert("an unclosed ` tick") == "an unclosed \\` tick"
    assert inert("``a ` b``") == "``a ` b``"
    assert inert("`a|b` c|d", cell=True) == "`a\\|b` c\\|d"
    assert inline("a|b", cell=True) == "`a\\|b`"


def test_html_text_for_a_summary_line():
    assert html_text("<b>@bob</b> & #1") == "&lt;b&gt;@\u200dbob&lt;/b&gt; &amp; #\u200d1"


def test_control_and_bidi_characters_are_dropped_and_ansi_colours_too():
    assert inert("a\x00b\u202ec\x1b[31md") == "abcd"
    assert fenced("\x1b[31mred\x1b[0m") == "```\nred\n```"


def test_the_grading_machines_paths_are_hidden(tmp_path):
    import sys
    import tempfile

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = f"{sys.prefix}/lib/{version}/site-packages/torch/nn/modules/module.py"
    assert hide_paths(f"File {site}:12") == "File <site-packages>/torch/nn/modules/module.py:12"
    scratch = f"{tempfile.gettempdir()}/grader-abc123"
    assert hide_paths(f"open('{scratch}/work/data/x.csv')") == "open('./data/x.csv')"
    assert hide_paths(f"{scratch}/capture/c.json") == "<scratch>/capture/c.json"
    checkout = str(Path(__file__).resolve().parents[2])
    assert hide_paths(f"{checkout}/grader/child/runner.py") == "<grader>/grader/child/runner.py"
    assert hide_paths(f"{checkout}-other/x") == f"{checkout}-other/x"  # a prefix, not a folder
    assert inline(site).startswith("`<site-packages>/")

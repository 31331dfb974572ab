"""The filters that keep text from a submission inert in Markdown."""

from grader.views.markdown import bar, fenced, inline, number, safe_name, thin


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

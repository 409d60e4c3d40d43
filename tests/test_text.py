from appliance.text import one_line


def test_controls_become_spaces_and_lone_surrogates_the_replacement_character():
    assert one_line("a\nb\r\x00c\x7f\x85d") == "a b  c  d"
    assert one_line("x\ud800y") == "x\ufffdy"


def test_other_text_is_kept_as_it_is():
    text = "Ada Lovelace — 张伟 · MIT ✓"
    assert one_line(text) == text

"""OPML in and out: a feed reader's export becomes [[sources]] blocks that load as they
are, and the configured feeds go back out as a subscription list."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from harvester.config import parse_config
from harvester.opml import Subscription, plan_import, read_opml, sources_toml, write_opml

from .conftest import FIXTURES, feed_source, make_config, run_cli

EXPORT = FIXTURES / "opml" / "reader-export.opml"
HTTP = '[storage]\npath = "h.db"\n'


def imported(tmp_path: Path, cfg: Path, *outlines: tuple[str, str]):
    """`opml import` of a reader's list holding these (text, xmlUrl) outlines, each as
    written in the file's attribute, beside the config `cfg`."""
    opml = tmp_path / "reader.opml"
    opml.write_text('<opml version="2.0"><body>' + "".join(
        f'<outline type="rss" text="{text}" xmlUrl="{url}"/>' for text, url in outlines)
        + "</body></opml>", "utf-8")
    return run_cli("--config", str(cfg), "opml", "import", str(opml))


def test_import_prints_blocks_that_load_beside_the_config(tmp_path: Path):
    cfg = make_config(tmp_path, HTTP + feed_source("iom-partners-press", "https://other.example/"))
    r = run_cli("--config", str(cfg), "opml", "import", str(EXPORT))
    assert r.returncode == 0
    assert r.stdout == (
        '[[sources]]  # ICMPD News Centre\nname = "icmpd-news-centre"\nkind = "feed"\n'
        'url = "https://www.icmpd.org/news-centre/rss"\n\n'
        '[[sources]]  # IOM & Partners: Press\nname = "iom-partners-press-2"\nkind = "feed"\n'
        'url = "https://www.iom.example/press.xml"\n\n'
        # the title was an external entity: never expanded, so the name comes from the URL
        '[[sources]]\nname = "blog-example-org-feed"\nkind = "feed"\n'
        'url = "https://blog.example.org/feed/"\n\n'
        '[[sources]]\nname = "news-example-net-atom-xml"\nkind = "feed"\n'
        'url = "https://news.example.net/atom.xml"\n')
    assert r.stderr == ("4 feeds as [[sources]] blocks; 1 feed listed twice, once is enough;"
                        " not http(s), left out: file:///etc/passwd\n")
    both = cfg.read_text("utf-8") + "\n" + r.stdout
    config = parse_config(tomllib.loads(both), cfg)
    assert [s.name for s in config.sources][-4:] == [
        "icmpd-news-centre", "iom-partners-press-2", "blog-example-org-feed",
        "news-example-net-atom-xml"]

    # a second import into the grown config has nothing left to add
    cfg.write_text(both, "utf-8")
    r = run_cli("--config", str(cfg), "opml", "import", str(EXPORT))
    assert (r.returncode, r.stdout) == (0, "")
    assert r.stderr.startswith("0 feeds as [[sources]] blocks; 5 already configured;")


def test_a_readers_direction_controls_and_escapes_are_shown_not_obeyed(tmp_path: Path):
    """A subscription list is someone else's file: a right-to-left override in a title or
    URL, or an escape, would turn what a terminal or an editor shows after it (the config
    line the block becomes, the rest of the stderr line). The comment shows the title's
    text; the URL is written with visible TOML escapes and loads back as it was."""
    opml = tmp_path / "evil.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        '<outline title="Press &#x202e;fdp.exe &#x9b;2J" '
        'xmlUrl="https://news.example/feed?a=&#x202e;b"/>'
        '<outline title="ftp" xmlUrl="ftp://x.example/&#x202e;y"/></body></opml>', "utf-8")
    cfg = make_config(tmp_path, HTTP)
    r = run_cli("--config", str(cfg), "opml", "import", str(opml))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ('[[sources]]  # Press fdp.exe 2J\nname = "press-fdp-exe-2j"\n'
                        'kind = "feed"\nurl = "https://news.example/feed?a=\\u202Eb"\n')
    assert r.stderr == ("1 feed as [[sources]] blocks; not http(s), left out: "
                        "ftp://x.example/y\n")
    [source] = parse_config(tomllib.loads(cfg.read_text("utf-8") + "\n" + r.stdout),
                            cfg).sources
    assert source.url == "https://news.example/feed?a=\u202eb"


def test_a_feed_configured_under_another_spelling_of_its_url_is_not_added_again(
        tmp_path: Path):
    """As `add` has it: the same canonical URL is the same feed, however a reader wrote
    it (capitals, the default port, a fragment, a tracking parameter)."""
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss",
                                                   "https://www.icmpd.org/news-centre/rss"))
    r = imported(tmp_path, cfg, ("a", "HTTPS://WWW.ICMPD.ORG:443/news-centre/rss#top"),
                 ("b", "https://www.icmpd.org/news-centre/rss?utm_source=x"),
                 ("c", "https://news.example/a.xml"), ("d", "https://NEWS.example/a.xml"))
    assert (r.returncode, r.stdout) == (0, '[[sources]]  # c\nname = "c"\nkind = "feed"\n'
                                           'url = "https://news.example/a.xml"\n')
    assert r.stderr == ("1 feed as [[sources]] blocks; 2 already configured; 1 feed listed "
                        "twice, once is enough\n")


def test_a_variable_a_readers_file_names_is_never_read_from_the_environment(
        tmp_path: Path):
    """The config reads ${NAME} in a source's URL from the environment: a list that wrote
    `?k=${SMTP_PASSWORD}` into a feed's URL, pasted as it came, had every poll send that
    password to the feed's site. It is written %24{…}, the same characters to the site,
    and said, so a user moving their own list puts back the ${NAME}s they meant."""
    cfg = make_config(tmp_path, HTTP)
    r = imported(tmp_path, cfg, ("News", "https://news.example/rss?k=${SMTP_PASSWORD}"),
                 ("Plain", "https://news.example/plain.xml?a=$b&amp;c={d}"))
    assert (r.returncode, r.stdout) == (0, (
        '[[sources]]  # News\nname = "news"\nkind = "feed"\n'
        'url = "https://news.example/rss?k=%24{SMTP_PASSWORD}"\n\n'
        '[[sources]]  # Plain\nname = "plain"\nkind = "feed"\n'
        'url = "https://news.example/plain.xml?a=$b&c={d}"\n'))
    assert r.stderr == (
        "2 feeds as [[sources]] blocks; 1 URL holding ${NAME} written %24{NAME}: the "
        "list's words, which the config does not read from your environment (write ${NAME} "
        "back where you mean a variable of yours)\n")
    sources = parse_config(tomllib.loads(cfg.read_text("utf-8") + "\n" + r.stdout),
                           cfg).sources
    assert [s.url for s in sources] == ["https://news.example/rss?k=%24{SMTP_PASSWORD}",
                                        "https://news.example/plain.xml?a=$b&c={d}"]


def test_a_feed_the_config_would_refuse_is_left_out_and_said_why(tmp_path: Path):
    """Every block printed loads: a URL whose port or host no request can go to, or that
    carries a user and password (which harvester never sends, and which would show in
    every log), was printed, and the config the user pasted it into no longer loaded. It
    is left out, with why; the password is not shown."""
    cfg = make_config(tmp_path, HTTP)
    r = imported(tmp_path, cfg, ("Port", "https://news.example:99999/rss"),
                 ("Host", "https://[intranet/rss"),
                 ("Login", "https://me:pa55word@private.example/rss?x=1"),
                 ("Fine", "https://news.example/rss"))
    assert (r.returncode, r.stdout) == (0, '[[sources]]  # Fine\nname = "fine"\nkind = '
                                           '"feed"\nurl = "https://news.example/rss"\n')
    assert r.stderr == (
        "1 feed as [[sources]] blocks; no port from 1 to 65535, left out: "
        "https://news.example:99999/rss; no host a request can go to, left out: "
        "https://[intranet/rss; a user and password in its URL, which harvester never sends "
        "(`harvester add URL -H 'Authorization: Basic …'` writes them as a header), left "
        "out: https://private.example/rss?x=1\n")
    assert "pa55word" not in r.stderr


def test_export_then_import_round_trips_the_feeds(tmp_path: Path):
    cfg = make_config(tmp_path, HTTP + feed_source("icmpd-rss", "https://www.icmpd.org/news-centre/rss")
                      + '[[sources]]\nname = "icmpd-news"\nkind = "html"\n'
                        'url = "https://www.icmpd.org/news-centre/"\n[sources.select]\n'
                        'item = "div.news-item"\ntitle = "h3"\nlink = "h3 a"\n')
    r = run_cli("--config", str(cfg), "opml", "export")
    assert r.returncode == 0 and r.stdout.startswith("<?xml version='1.0' encoding='utf-8'?>")
    # listing pages are not feeds: only the feed goes out
    assert [(s.title, s.url) for s in read_opml(r.stdout.encode())] == [
        ("icmpd-rss", "https://www.icmpd.org/news-centre/rss")]
    assert r.stderr == ("left out: icmpd-news (an HTML listing page: no feed reader reads it; "
                        "`harvester items --atom --source icmpd-news` writes its items as a "
                        "feed)\n")
    exported = tmp_path / "out.opml"
    exported.write_text(r.stdout, "utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("opml", "import", str(exported), cwd=empty)  # no config: nothing to avoid
    assert r.stdout == ('[[sources]]  # icmpd-rss\nname = "icmpd-rss"\nkind = "feed"\n'
                        'url = "https://www.icmpd.org/news-centre/rss"\n')


def test_a_file_that_is_not_opml_is_named_so(tmp_path: Path):
    rss = FIXTURES / "feeds" / "icmpd-2020-05-a.rss"
    r = run_cli("opml", "import", str(rss), cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "harvester: error: not OPML: the document is <rss>, not <opml>\n"
    binary = tmp_path / "x.opml"
    binary.write_bytes(b"\x00\x01\x02")
    r = run_cli("opml", "import", str(binary), cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("harvester: error: not OPML: ")


def test_broken_bytes_and_references_in_attributes_read_as_replacement_characters():
    body = ('<?xml version="1.0" encoding="utf-8"?><opml version="2.0"><body>'
            '<outline text="Caf\xe9 news &#xD800;" xmlUrl="https://e.org/f&#56320;"/>'
            '</body></opml>').encode("latin-1")  # é as Latin-1 behind a UTF-8 label
    assert read_opml(body) == [Subscription("Café news \ufffd", "https://e.org/f\ufffd")]


# what an XML attribute can carry: any character but the controls (tab aside) and
# U+FFFE/U+FFFF
_XML = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff",
                     include_characters="\t")
_TITLES = st.text(_XML, max_size=40)
_PATHS = st.text(_XML, max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TITLES, _PATHS), min_size=1, max_size=4))
# found by it: a character past U+FFFF in a URL was written as JSON's two surrogate
# escapes, which TOML refuses: the printed blocks did not load
@example([("", "\U00010000")])
def test_whatever_a_readers_export_names_its_feeds_the_blocks_load(feeds):
    """Titles and URLs as any feed reader may write them — quotes, backslashes, emoji,
    right-to-left text, tabs: the blocks printed load beside the config, one source a
    feed, each at the URL the file gave it."""
    subs = [Subscription(title, f"https://news.example/{path}") for title, path in feeds]
    read = read_opml(write_opml(subs))
    plan = plan_import(read, [])
    text = sources_toml(plan.new, {"icmpd-rss"})
    config = parse_config(tomllib.loads(
        '[storage]\npath = "h.db"\n' + feed_source("icmpd-rss", "https://www.icmpd.org/rss")
        + "\n" + text), Path("harvester.toml"))
    assert [s.url for s in config.sources[1:]] == [s.url for s in plan.new]

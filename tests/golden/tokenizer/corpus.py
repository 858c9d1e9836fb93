"""Deterministic English text for tokenizer parity, taken from installed Debian packages.

wordnet-base: glosses of /usr/share/wordnet/data.* (definitions and quoted example sentences).
dict-gcide: paragraphs of the GNU Collaborative International Dictionary of English.
Both are read in file order and sampled with fixed strides, so every run yields the same text.
"""
import gzip
import os

WORDNET_DIR = "/usr/share/wordnet"
GCIDE_PATH = "/usr/share/dictd/gcide.dict.dz"


def available():
    return os.path.isdir(WORDNET_DIR) and os.path.exists(GCIDE_PATH)


def wordnet_sentences():
    """Definitions and example sentences, in file order, deduplicated."""
    out, seen = [], set()
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(WORDNET_DIR, "data." + pos), encoding="utf-8") as f:
            for line in f:
                if not line[:1].isdigit() or " | " not in line:
                    continue
                gloss = line.split(" | ", 1)[1].strip()
                for part in gloss.split("; "):
                    part = part.strip()
                    if part.startswith('"'):
                        part = part.strip('"').strip()
                    if len(part) >= 3 and part not in seen:
                        seen.add(part)
                        out.append(part)
    return out


def gcide_paragraphs():
    """Entries' text as paragraphs (headword line + indented lines), markup kept as is."""
    with gzip.open(GCIDE_PATH, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = []
    for block in text.split("\n\n"):
        lines = [l.strip() for l in block.split("\n")]
        lines = [l for l in lines if l and not l.startswith("[") and not l.startswith("--")]
        para = " ".join(lines)
        if 20 <= len(para) <= 1500 and "\ufffd" not in para:
            out.append(para)
    return out


def sample(items, n):
    """n items spread evenly over `items` (deterministic)."""
    if n <= 0:
        return []
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def sentences(n_wordnet=12000, n_gcide=12000):
    return sample(wordnet_sentences(), n_wordnet) + sample(gcide_paragraphs(), n_gcide)


def adversarial():
    """Inputs chosen to break normalization, splitting and offsets."""
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3
    base = [
        "",
        " ",
        "   \t\n  ",
        "\u3000\u2003\u00a0",
        "hello world",
        "Hello, World! How's it going?",
        "Crème brûlée, naïve café, résumé, Ångström, Œuvre, Straße",
        "e\u0301 a\u0300 o\u0308 u\u0302\u0323 n\u0303",  # combining marks
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dalgo",
        "İstanbul'da ıstakoz yedik. ǅemal ﬁnally ﬂew",
        "你好，世界！这是一个测试。日本語のテキスト、カタカナ。한국어 문장입니다.",
        "混合English和中文text",
        "emoji 😀 😂 👍🏽 🇫🇷 🏳️‍🌈 👨‍👩‍👧‍👦 🧑🏿‍🚀 ❤️ ✌️",
        "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060wj",
        "control\x00chars\x01\x02\x07\x1b[31mred\x7f\x85\u2028\u2029end",
        "RTL: שלום עולם مرحبا بالعالم \u202eevil\u202c \u200f",
        "Ελληνικά κείμενο ΣΊΣΥΦΟΣ, русский текст ЁЖИК, Ünïcödé",
        "math: ∑∫∂√∞ ≠ ≤ ≥ ± × ÷ — – … “quotes” ‘single’ «guillemets»",
        "numbers 3.14159 1,000,000 ¼ ½ ² ³ ١٢٣ ४५६ ⅫⅣ",
        "URLs http://example.com/path?q=1&r=2#frag and e-mail a.b@c.org",
        "[CLS] special [SEP] tokens [MASK] inside [PAD] [UNK] text",
        "<s> roberta </s> tokens <mask> inside <pad> <unk>",
        "hello<mask>world <mask> x  <mask>",
        "[MASK][MASK]x[MASK]",
        "a" * 99,
        "a" * 100,
        "a" * 101,
        "é" * 100,
        "é" * 101,
        long_word,
        "x" + long_word + " " + long_word[:90],
        "tab\tseparated\tvalues\nnew line\r\ncarriage",
        "   leading and trailing spaces   ",
        "multiple     spaces    between",
        "'s 't 're 've 'm 'll 'd it's they're I've we'll you'd I'm",
        "private use \ue000\uf8ff and \U000f0000 plane-15, unassigned \u0378",
        "ＦＵＬＬＷＩＤＴＨ　ｌｅｔｔｅｒｓ　１２３",
        "Ⅻ ℃ ™ ℡ ㍿ ﷺ",
        "\U0001d54f\U0001d55a\U0001d556 math alphanumerics",
        "Hangul jamo \u1100\u1161\u11a8 and syllable 각",
        "Devanagari हिन्दी, Thai ภาษาไทย, Tamil தமிழ்",
        "🥰🫠🪿 newer emoji",
        "dots...and---dashes___underscores",
        "\u0301leading combining mark",
        "Ǆ ǅ ǆ Ǉ ǈ ǉ",
    ]
    words = sentences(200, 0)
    long_text = " ".join(words)
    while len(long_text) < 50000:
        long_text += " " + long_text
    base.append(long_text[:50000])
    base.append(("日本語" * 100 + " ") * 20)
    return base

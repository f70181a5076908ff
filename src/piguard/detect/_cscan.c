/* The compiled structured-detection engine: one pass over the text's code points finds candidate tokens,
 * classifies and validates each (check digits, region codes, dates, number plans), weighs context words and
 * returns the hits as flat arrays.
 *
 * Why hand-written C: the polars engine in structured.py (kept as the readable reference and tested to give
 * the same answers, see tests/detect/test_cscan.py) spends ~3 us of column operations per candidate; no
 * library validates Chinese identifiers in bulk, and Python-level loops are slower still. Here a candidate
 * costs well under a microsecond, and offsets are code-point offsets, i.e. Python string indices.
 *
 * The tokenizer reproduces, alternative by alternative, the leftmost-first semantics of CANDIDATE_PATTERN
 * in structured.py; the classifier reproduces _rules() in the same order with the same gates; the context
 * step reproduces ContextRules.adjust_expr_frame. Data tables (region codes, mobile prefixes, calling-code
 * lengths, context words, today's date) come from Python through configure(), so the rules' data stays
 * in one place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef uint32_t u32;
typedef Py_ssize_t ssz;

#if defined(__GNUC__) || defined(__clang__)
#define ctz32(x) __builtin_ctz(x)
#else
static inline int ctz32(uint32_t x) { /* x != 0 */
    int n = 0;
    while (!(x & 1)) { x >>= 1; n++; }
    return n;
}
#endif

/* Entity ids: the order of ENTITIES in structured.py. */
enum {
    E_NONE = -1, E_EMAIL = 0, E_RID, E_PHONE, E_CARD, E_IMEI, E_USCC, E_IP, E_MAC, E_PASSPORT, E_HKMO,
    E_TW, E_PLATE, E_GPS, E_DOB, N_ENT
};

/* ---------------------------------------------------------------- configuration (set from Python) -- */
static uint8_t *g_region;      /* 1,000,000 flags: six-digit administrative division codes */
static uint8_t g_mobile[1000]; /* three-digit mobile prefixes */
static uint8_t g_imei_rb[100]; /* IMEI reporting-body prefixes */
static uint8_t g_intl[1000 * 32]; /* calling code * 32 + national number length */
static int g_today;            /* yyyymmdd */
static int g_configured;

typedef struct {
    u32 *chars;
    int len;
    int bounded; /* ASCII-letter initial: needs a non-letter (or the window start) on its left */
} Word;
typedef struct {
    Word *words; /* longest first */
    int n;
    /* first-character buckets: indices into words, increasing */
    int *bucket[1024];
    int bucket_n[1024];
    uint32_t bit; /* this set's bit in g_first */
} WordSet;
/* per (c & 4095): which word sets (bit 0 the negative words, 1 + e those of entity e) have a word starting
 * with a character c; a filter that never misses, so the context search skips most of a window */
static uint32_t g_first[4096];

static WordSet g_neg, g_pos[N_ENT], g_after[N_ENT];
static int g_has_pos[N_ENT], g_has_after[N_ENT];
static int g_window = 24;
static double g_boost = 0.15, g_penalty = 0.45;

/* ---------------------------------------------------------------------------- character classes -- */
/* ASCII character classes, one bit each (generated from the definitions they replace: a load instead of a
 * chain of comparisons in the scanner's innermost loops) */
enum { A_DIGIT = 1, A_ALPHA = 2, A_HEX = 4, A_LOCAL = 8, A_LABEL = 16, A_GSEP = 32, A_START = 64, A_SEPC = 128 };
static const uint8_t ASCII_CLASS[128] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0xc0, 0x80, 0x00, 0xc8, 0x00, 0xf8, 0xa8, 0xa0,
    0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x00, 0x00, 0x00, 0x00, 0x08,
    0x00, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x00, 0x00, 0x00, 0x00, 0x00};
static inline int ascii_is(u32 c, int bit) { return c < 128 && (ASCII_CLASS[c] & bit); }
static inline int is_digit(u32 c) { return c - '0' < 10u; }
static inline int is_D(u32 c) { return c - '0' < 10u || c - 0xFF10 < 10u; }
static inline int is_upper(u32 c) { return c - 'A' < 26u; }
static inline int is_alpha(u32 c) { return (c | 0x20) - 'a' < 26u; }
static inline int is_alnum(u32 c) { return ascii_is(c, A_DIGIT | A_ALPHA); }
static inline int is_hex(u32 c) { return ascii_is(c, A_HEX); }
static inline int is_gletter(u32 c) { return is_alpha(c) || c - 0xFF21 < 26u || c - 0xFF41 < 26u; }
static inline int is_gsep(u32 c) {
    return c < 128 ? ASCII_CLASS[c] & A_GSEP : (c == 0xFF0D || c == 0xFF0E || c == 0xFF1A);
}
static inline int is_local(u32 c) { return ascii_is(c, A_LOCAL); }
static inline int is_label(u32 c) { return ascii_is(c, A_LABEL); }
static const u32 PROVINCES[] = {0x4eac, 0x6d25, 0x6caa, 0x6e1d, 0x5180, 0x8c6b, 0x4e91, 0x8fbd, 0x9ed1, 0x6e58,
                                0x7696, 0x9c81, 0x65b0, 0x82cf, 0x6d59, 0x8d63, 0x9102, 0x6842, 0x7518, 0x664b,
                                0x8499, 0x9655, 0x5409, 0x95fd, 0x8d35, 0x7ca4, 0x9752, 0x85cf, 0x5ddd, 0x5b81,
                                0x743c};
static uint8_t g_prov[0x5200]; /* flags for 0x4E00..0x9FFF, indexed c - 0x4E00 */
static inline int is_prov(u32 c) { return c >= 0x4E00 && c < 0x4E00 + 0x5200 && g_prov[c - 0x4E00]; }
static inline int is_plate_sep(u32 c) { return c == ' ' || c == 0xB7 || c == 0x2022 || c == 0x30FB; }
static inline int is_plate_suffix(u32 c) { /* 挂学警港澳 */
    return c == 0x6302 || c == 0x5B66 || c == 0x8B66 || c == 0x6E2F || c == 0x6FB3;
}
static inline int can_start(u32 c) {
    if (c < 128) return ASCII_CLASS[c] & A_START;
    if (c - 0x4E00 < 0x5200u) return g_prov[c - 0x4E00]; /* CJK: only a province starts a plate */
    if (c - 0xFF08 > 0xFF5Au - 0xFF08) return 0;          /* nothing else outside the full-width forms */
    return (c >= 0xFF10 && c <= 0xFF19) || (c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A) ||
           c == 0xFF0B || c == 0xFF08;
}

/* Full-width digits, letters and the punctuation normalize_expr maps: one code point for one. */
static inline u32 norm(u32 c) {
    if (c < 0xFF08 || c > 0xFF5A) return c == 0x3000 ? ' ' : c;
    if (c >= 0xFF10 && c <= 0xFF19) return '0' + (c - 0xFF10);
    if (c >= 0xFF21 && c <= 0xFF3A) return 'A' + (c - 0xFF21);
    if (c >= 0xFF41 && c <= 0xFF5A) return 'a' + (c - 0xFF41);
    switch (c) {
    case 0xFF0D: return '-';
    case 0xFF0B: return '+';
    case 0xFF0E: return '.';
    case 0xFF1A: return ':';
    case 0xFF08: return '(';
    case 0xFF09: return ')';
    case 0xFF20: return '@';
    case 0xFF0F: return '/';
    case 0xFF0C: return ',';
    }
    return c;
}

static inline int run(const u32 *t, ssz n, ssz q, int (*cls)(u32)) {
    ssz r = q;
    while (r < n && cls(t[r])) r++;
    return (int)(r - q);
}
/* the length of the run, counted no further than cap */
static inline int run_upto(const u32 *t, ssz n, ssz q, int (*cls)(u32), int cap) {
    int m = 0;
    while (m < cap && q + m < n && cls(t[q + m])) m++;
    return m;
}

/* ------------------------------------------------------------------------------------ tokenizer -- */
/* Each alt_* returns the end of its match at p, or -1; the leftmost-first semantics of the regex
 * alternative (greedy quantifiers with backtracking) are worked out in the comments. */

/* [A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}
 * The local part cannot give back characters ('@' is outside its class); labels are maximal runs; the
 * repeated group gives back whole labels until "\.[A-Za-z]{2,}" matches, so the match ends in the LAST label
 * that starts with two letters, after its leading letters. */
static ssz alt_email(const u32 *t, ssz n, ssz p, ssz *no_email_until) {
    if (p < *no_email_until || !is_alnum(t[p])) return -1;
    ssz r = p + 1;
    while (r < n && is_local(t[r])) r++;
    if (r >= n || t[r] != '@') { *no_email_until = r; return -1; }
    ssz q = r + 1;
    int l = run(t, n, q, is_label);
    if (l == 0) { *no_email_until = r; return -1; }
    q += l;
    ssz end = -1;
    while (q < n && t[q] == '.') {
        int m = run(t, n, q + 1, is_label);
        if (m == 0) break;
        int letters = run(t, n, q + 1, is_alpha);
        if (letters >= 2) end = q + 1 + letters;
        q += 1 + m;
    }
    if (end < 0) *no_email_until = r; /* every start in this local part meets the same domain */
    return end;
}

/* [PROV][A-Z][·•・ ]?[A-Z0-9]{5,}[挂学警港澳]? */
static int is_upper_digit(u32 c) { return is_upper(c) || is_digit(c); }
static ssz alt_plate(const u32 *t, ssz n, ssz p) {
    if (!is_prov(t[p]) || p + 1 >= n || !is_upper(t[p + 1])) return -1;
    ssz q = p + 2;
    if (q < n && is_plate_sep(t[q])) q++;
    int m = run(t, n, q, is_upper_digit);
    if (m < 5) return -1;
    q += m;
    if (q < n && is_plate_suffix(t[q])) q++;
    return q;
}

/* D{4} ?年 ?D{1,2} ?月 ?D{1,2} ?[日号]?   (D = ASCII or full-width digit) */
static int is_D_(u32 c) { return is_D(c); }
static ssz alt_cn_date(const u32 *t, ssz n, ssz p) {
    if (run_upto(t, n, p, is_D_, 5) != 4) return -1; /* a fifth digit is neither ' ' nor 年 */
    ssz q = p + 4;
    static const u32 marks[2] = {0x5E74 /*年*/, 0x6708 /*月*/};
    for (int k = 0; k < 2; k++) {
        if (q < n && t[q] == ' ') q++;
        if (q >= n || t[q] != marks[k]) return -1;
        q++;
        if (q < n && t[q] == ' ') q++;
        int m = run(t, n, q, is_D_);
        if (m == 0) return -1;
        q += m > 2 ? 2 : m;
        if (k == 0 && m > 2) return -1; /* a third digit can be neither ' ' nor 月 */
    }
    if (q < n && t[q] == ' ') q++;
    if (q < n && (t[q] == 0x65E5 /*日*/ || t[q] == 0x53F7 /*号*/)) q++;
    return q;
}

/* [+\-]?D{1,3}[.．]D{4,} ?[,，] ?[+\-]?D{1,3}[.．]D{4,} */
static ssz coord_half(const u32 *t, ssz n, ssz q) {
    if (q < n && (t[q] == '+' || t[q] == '-')) q++;
    int m = run_upto(t, n, q, is_D_, 4);
    if (m < 1 || m > 3) return -1;
    q += m;
    if (q >= n || (t[q] != '.' && t[q] != 0xFF0E)) return -1;
    q++;
    m = run(t, n, q, is_D_);
    if (m < 4) return -1;
    return q + m;
}
static ssz alt_coords(const u32 *t, ssz n, ssz p) {
    ssz q = coord_half(t, n, p);
    if (q < 0) return -1;
    if (q < n && t[q] == ' ') q++;
    if (q >= n || (t[q] != ',' && t[q] != 0xFF0C)) return -1;
    q++;
    if (q < n && t[q] == ' ') q++;
    return coord_half(t, n, q);
}

/* [(（]0D{2,3}[)）] ?D{7,8} */
static ssz alt_bracket_landline(const u32 *t, ssz n, ssz p) {
    if (t[p] != '(' && t[p] != 0xFF08) return -1;
    ssz q = p + 1;
    if (q >= n || t[q] != '0') return -1;
    q++;
    int m = run_upto(t, n, q, is_D_, 4);
    if (m < 2 || m > 3) return -1;
    q += m;
    if (q >= n || (t[q] != ')' && t[q] != 0xFF09)) return -1;
    q++;
    if (q < n && t[q] == ' ') q++;
    m = run(t, n, q, is_D_);
    if (m < 7) return -1;
    return q + (m > 8 ? 8 : m);
}

/* [0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5} */
static ssz alt_mac(const u32 *t, ssz n, ssz p) {
    if (p + 17 > n) return -1;
    for (int k = 0; k < 6; k++) {
        ssz q = p + 3 * k;
        if (k && t[q - 1] != ':' && t[q - 1] != '-') return -1;
        if (!is_hex(t[q]) || !is_hex(t[q + 1])) return -1;
    }
    return p + 17;
}

static int is_hex_(u32 c) { return is_hex(c); }
/* one "H{1,4}:" group at q: the hex run must be 1-4 long and followed by ':' (a longer run cannot give
 * back characters usefully: the next one would be hex, not ':'); returns the run length or 0 */
static inline int hex_group(const u32 *t, ssz n, ssz q) {
    int m = run_upto(t, n, q, is_hex_, 5);
    if (m < 1 || m > 4 || q + m >= n || t[q + m] != ':') return 0;
    return m;
}

/* (?:H{1,4}:){7}H{1,4} */
static ssz alt_ipv6_full(const u32 *t, ssz n, ssz p) {
    ssz q = p;
    for (int k = 0; k < 7; k++) {
        int m = hex_group(t, n, q);
        if (!m) return -1;
        q += m + 1;
    }
    int m = run(t, n, q, is_hex_);
    if (m < 1) return -1;
    return q + (m > 4 ? 4 : m);
}

/* (?:H{1,4}:){1,6}:(?:H{1,4}:){0,5}H{1,4}
 * The first groups are greedy and only their maximal count can be followed by ':'. In the second part, when
 * no hex follows the last group, the engine gives that group back and its hex run ends the match. */
static ssz alt_ipv6_compressed(const u32 *t, ssz n, ssz p) {
    ssz q = p;
    int g = 0;
    while (g < 6) {
        int m = hex_group(t, n, q);
        if (!m) break;
        q += m + 1;
        g++;
    }
    if (g == 0 || q >= n || t[q] != ':') return -1;
    q++;
    ssz last_start = -1;
    int last_len = 0;
    for (int k = 0; k < 5; k++) {
        int m = hex_group(t, n, q);
        if (!m) break;
        last_start = q;
        last_len = m;
        q += m + 1;
    }
    int m = run(t, n, q, is_hex_);
    if (m >= 1) return q + (m > 4 ? 4 : m);
    if (last_start >= 0) return last_start + last_len;
    return -1;
}

/* [+＋]?(?:[A-Za-zＡ-Ｚａ-ｚ]{1,2})?D(?:D|[ \-－.．/:：]D|[A-Za-zＡ-Ｚａ-ｚ]){3,} */
static ssz alt_generic(const u32 *t, ssz n, ssz p) {
    ssz q = p;
    if (t[q] == '+' || t[q] == 0xFF0B) q++;
    int letters = 0;
    while (q + letters < n && letters < 3 && is_gletter(t[q + letters])) letters++;
    if (letters >= 3) return -1;
    q += letters;
    if (q >= n || !is_D(t[q])) return -1;
    q++;
    int reps = 0;
    while (q < n) {
        u32 c = t[q];
        if (c < 128) { /* the common case, one table load */
            int f = ASCII_CLASS[c];
            if (f & (A_DIGIT | A_ALPHA)) q++;
            else if ((f & A_GSEP) && q + 1 < n && is_D(t[q + 1])) q += 2;
            else break;
        } else if (is_D(c) || is_gletter(c)) q++;
        else if (is_gsep(c) && q + 1 < n && is_D(t[q + 1])) q += 2;
        else break;
        reps++;
    }
    return reps >= 3 ? q : -1;
}

/* The alternatives in pattern order, but only those that can start with this character. */
static ssz match_at(const u32 *t, ssz n, ssz p, ssz *no_email_until) {
    ssz e;
    u32 c = t[p];
    if (c < 128) {
        if (is_alnum(c)) {
            if (p >= *no_email_until && (e = alt_email(t, n, p, no_email_until)) >= 0) return e;
            /* Each alternative below is tried only where its own first test passes: the Chinese date
             * wants exactly four digits, coordinates one to three and a point, a MAC address a hex pair
             * and a separator, IPv6 one to four hex digits and a colon. */
            if (is_digit(c)) {
                int dr = run_upto(t, n, p, is_D_, 5);
                if (dr == 4 && (e = alt_cn_date(t, n, p)) >= 0) return e;
                if (dr <= 3 && p + dr < n && (t[p + dr] == '.' || t[p + dr] == 0xFF0E) &&
                    (e = alt_coords(t, n, p)) >= 0)
                    return e;
            }
            if (is_hex(c)) {
                int hr = run_upto(t, n, p, is_hex_, 5);
                u32 after = p + hr < n ? t[p + hr] : 0;
                if (hr == 2 && (after == ':' || after == '-') && (e = alt_mac(t, n, p)) >= 0) return e;
                if (hr <= 4 && after == ':') {
                    if ((e = alt_ipv6_full(t, n, p)) >= 0) return e;
                    if ((e = alt_ipv6_compressed(t, n, p)) >= 0) return e;
                }
            }
            return alt_generic(t, n, p);
        }
        if (c == '+' || c == '-') {
            if ((e = alt_coords(t, n, p)) >= 0) return e;
            return c == '+' ? alt_generic(t, n, p) : -1;
        }
        return c == '(' ? alt_bracket_landline(t, n, p) : -1;
    }
    if (c >= 0xFF10 && c <= 0xFF19) { /* full-width digit */
        if ((e = alt_cn_date(t, n, p)) >= 0) return e;
        if ((e = alt_coords(t, n, p)) >= 0) return e;
        return alt_generic(t, n, p);
    }
    if (c == 0xFF08) return alt_bracket_landline(t, n, p);
    if (c == 0xFF0B || is_gletter(c)) return alt_generic(t, n, p);
    return alt_plate(t, n, p);
}

/* ---------------------------------------------------------------------------------- classifier -- */
typedef struct {
    int main, alt;          /* entity ids or E_NONE */
    double conf, alt_conf;
    int needs;              /* main reading needs context */
} Verdict;

typedef struct {
    const u32 *n;  /* normalized token */
    int len;
    char d[64];    /* compact form when it is short and ASCII (dascii), else only its length is known */
    int dlen;      /* UTF-8 byte length of the compact form */
    int dchars;
    int dascii;
    int alld, at, plus_cc, colon2, comma;
    int luhn, id_ck, uscc_ck;
} Tok;

static int is_sep_compact(u32 c) {
    return c < 128 ? ASCII_CLASS[c] & A_SEPC : (c == 0xB7 || c == 0x2022 || c == 0x30FB);
}
static inline int utf8_len(u32 c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

static int valid_date(int y, int m, int d) {
    static const int mdays[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m]) return 0;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 0;
    return y * 10000 + m * 100 + d <= g_today;
}
static int num(const char *s, int k) {
    int v = 0;
    for (int i = 0; i < k; i++) v = v * 10 + (s[i] - '0');
    return v;
}

static const int ID_W[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
static const int USCC_W[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
static int8_t g_uscc[128]; /* GB 32100 alphabet value of an ASCII character (either case), or -1 */
static void init_uscc(void) {
    static const char *alpha = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    memset(g_uscc, -1, sizeof g_uscc);
    for (int i = 0; alpha[i]; i++) {
        g_uscc[(int)alpha[i]] = (int8_t)i;
        if (alpha[i] >= 'A') g_uscc[alpha[i] + 32] = (int8_t)i;
    }
}
static inline int uscc_value(char c) { return (unsigned char)c < 128 ? g_uscc[(int)c] : -1; }

/* One character (normalized) of a token into its features; see features(). */
#define FEATURE_STEP(k, c, colons, digits)                                                                   \
    do {                                                                                                    \
        if ((c) < 128) {                                                                                    \
            int f_ = ASCII_CLASS[c];                                                                        \
            if ((c) == '@') (k)->at = 1;                                                                    \
            else if ((c) == ':') (colons)++;                                                                \
            else if ((c) == ',') (k)->comma = 1;                                                            \
            if (!(f_ & A_SEPC)) {                                                                           \
                (digits) += f_ & A_DIGIT;                                                                   \
                if ((k)->dchars < 63) (k)->d[(k)->dchars] = (char)(c);                                      \
                (k)->dchars++;                                                                              \
                (k)->dlen++;                                                                                \
            }                                                                                               \
        } else if (!is_sep_compact(c)) {                                                                    \
            (k)->dascii = 0;                                                                                \
            if ((k)->dchars < 63) (k)->d[(k)->dchars] = '?';                                                \
            (k)->dchars++;                                                                                  \
            (k)->dlen += utf8_len(c);                                                                       \
        }                                                                                                   \
    } while (0)

static inline void features_start(Tok *k) {
    k->dlen = k->dchars = 0;
    k->dascii = 1;
    k->at = k->colon2 = k->comma = 0;
}
static void features_finish(Tok *k, int colons, int digits) {
    const u32 *n = k->n;
    int len = k->len;
    if (k->dchars > 63) k->dascii = 0;
    k->d[k->dchars < 63 ? k->dchars : 63] = 0;
    k->colon2 = colons >= 2;
    k->alld = k->dchars > 0 && digits == k->dchars;
    k->plus_cc = len >= 1 && n[0] == '+' && !(len >= 3 && n[1] == '8' && n[2] == '6');
    k->luhn = k->id_ck = k->uscc_ck = 0;
    const char *d = k->d;
    if (k->alld && k->dlen >= 12 && k->dlen <= 19) {
        int s = 0;
        for (int i = k->dchars - 1, j = 0; i >= 0; i--, j++) {
            int v = d[i] - '0';
            if (j & 1) { v *= 2; if (v > 9) v -= 9; }
            s += v;
        }
        k->luhn = s % 10 == 0;
    }
    if (k->dlen == 18 && k->dchars == 18) {
        int ok = 1, s = 0;
        for (int i = 0; i < 17; i++) {
            if (!is_digit((u32)d[i])) { ok = 0; break; }
            s += (d[i] - '0') * ID_W[i];
        }
        if (ok) {
            char want = "10X98765432"[s % 11];
            k->id_ck = d[17] == want || (want == 'X' && d[17] == 'x');
        }
        ok = 1;
        s = 0;
        int v[18];
        for (int i = 0; i < 18; i++) {
            v[i] = uscc_value(d[i]);
            if (v[i] < 0 || (i >= 2 && i < 8 && !is_digit((u32)d[i]))) { ok = 0; break; }
        }
        if (ok) {
            for (int i = 0; i < 17; i++) s += v[i] * USCC_W[i];
            k->uscc_ck = (31 - s % 31) % 31 == v[17];
        }
    }
}

static void features(Tok *k) {
    features_start(k);
    int colons = 0, digits = 0;
    for (int i = 0; i < k->len; i++) {
        u32 c = k->n[i];
        FEATURE_STEP(k, c, colons, digits);
    }
    features_finish(k, colons, digits);
}

/* Small full-match helpers over the normalized token. */
static inline int digits_at(const u32 *s, int len, int i, int k) {
    if (i + k > len) return 0;
    for (int j = 0; j < k; j++)
        if (!is_digit(s[i + j])) return 0;
    return 1;
}
static inline int all_digits(const u32 *s, int len) {
    if (len == 0) return 0;
    return digits_at(s, len, 0, len);
}
static inline int is_dash_space(u32 c) { return c == ' ' || c == '-'; }
static int region6(const char *d) { return g_region[num(d, 6)]; }
static uint8_t g_province[100]; /* two-digit province codes: some six-digit code starts with them */

/* ^[0-9]{6}[ \-]?[0-9]{8}[ \-]?[0-9]{3}[0-9Xx]$ */
static int shape_id18(const u32 *s, int len) {
    int i = 0;
    if (!digits_at(s, len, i, 6)) return 0;
    i += 6;
    if (i < len && is_dash_space(s[i])) i++;
    if (!digits_at(s, len, i, 8)) return 0;
    i += 8;
    if (i < len && is_dash_space(s[i])) i++;
    if (!digits_at(s, len, i, 3)) return 0;
    i += 3;
    return i + 1 == len && (is_digit(s[i]) || s[i] == 'X' || s[i] == 'x');
}

/* ^(?:(?:\+|00)?86[ \-]?)?1[0-9]{2}[ \-]?[0-9]{4}[ \-]?[0-9]{4}$ */
static int mobile_core(const u32 *s, int len, int i) {
    if (i >= len || s[i] != '1' || !digits_at(s, len, i + 1, 2)) return 0;
    i += 3;
    if (i < len && is_dash_space(s[i])) i++;
    if (!digits_at(s, len, i, 4)) return 0;
    i += 4;
    if (i < len && is_dash_space(s[i])) i++;
    return digits_at(s, len, i, 4) && i + 4 == len;
}
static int shape_mobile(const u32 *s, int len) {
    if (mobile_core(s, len, 0)) return 1;
    int i = 0;
    if (len > 0 && s[0] == '+') i = 1;
    else if (len > 1 && s[0] == '0' && s[1] == '0') i = 2;
    for (int pre = i; pre >= 0; pre = pre ? 0 : -1) { /* with the '+'/'00' prefix, then without it */
        if (pre + 2 <= len && s[pre] == '8' && s[pre + 1] == '6') {
            int j = pre + 2;
            if (mobile_core(s, len, j)) return 1;
            if (j < len && is_dash_space(s[j]) && mobile_core(s, len, j + 1)) return 1;
        }
        if (pre == 0) break;
    }
    return 0;
}

/* ^[0-9]{4}(?:[ \-][0-9]{4}){2,3}(?:[ \-]?[0-9]{1,3})?$ */
static int tail_1_3(const u32 *s, int len, int i) {
    if (i == len) return 1;
    if (is_dash_space(s[i])) i++;
    int m = len - i;
    return m >= 1 && m <= 3 && digits_at(s, len, i, m);
}
static int shape_card_grouped(const u32 *s, int len) {
    if (!digits_at(s, len, 0, 4)) return 0;
    int i = 4, groups = 0, at[4];
    while (groups < 3 && i < len && is_dash_space(s[i]) && digits_at(s, len, i + 1, 4)) {
        i += 5;
        at[++groups] = i;
    }
    for (int g = groups; g >= 2; g--)
        if (tail_1_3(s, len, at[g])) return 1;
    return 0;
}

static int card_bin(const char *d, int L) {
    int p2 = num(d, 2), p4 = num(d, 4);
    if (d[0] == '4' && (L == 13 || L == 16 || L == 19)) return 1;
    if (((p2 >= 51 && p2 <= 55) || (p2 >= 22 && p2 <= 27)) && L == 16) return 1;
    if ((p2 == 34 || p2 == 37) && L == 15) return 1;
    if ((p2 == 62 || p2 == 60 || p2 == 65 || p2 == 35 || p2 == 94 || p2 == 95 || p2 == 68 || p2 == 69 ||
         p2 == 81) && L >= 16 && L <= 19)
        return 1;
    if ((p2 == 30 || p2 == 36 || p2 == 38) && L == 14) return 1;
    if ((p4 == 2131 || p4 == 1800) && L == 15) return 1;
    static const int maestro[] = {5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763, 604, 6390};
    for (unsigned j = 0; j < sizeof maestro / sizeof *maestro; j++)
        if (p4 == maestro[j] && L >= 12 && L <= 19) return 1;
    return 0;
}

/* ^[0-9]{2}[ \-][0-9]{6}[ \-][0-9]{6}[ \-][0-9]$ */
static int shape_imei_grouped(const u32 *s, int len) {
    return len == 18 && digits_at(s, len, 0, 2) && is_dash_space(s[2]) && digits_at(s, len, 3, 6) &&
           is_dash_space(s[9]) && digits_at(s, len, 10, 6) && is_dash_space(s[16]) && is_digit(s[17]);
}

/* The landline reading: land_core (country code removed, trunk 0 restored), its digits, area code check. */
typedef struct {
    u32 core[80];
    int len;
    char digits[80];
    int ndig;
    int area_ok;
} Land;
static void land(const Tok *k, Land *L) {
    const u32 *s = k->n;
    int len = k->len, i = 0, pre = -1;
    L->len = L->ndig = 0;
    if (len > 78) { L->area_ok = 0; L->len = -1; return; }
    if (len > 0 && s[0] == '+') pre = 1;
    else if (len > 1 && s[0] == '0' && s[1] == '0') pre = 2;
    int restore0 = 0;
    if (pre > 0 && pre + 2 <= len && s[pre] == '8' && s[pre + 1] == '6') {
        int j = pre + 2;
        int js = (j < len && is_dash_space(s[j])) ? j + 1 : j;
        if ((js < len && s[js] >= '1' && s[js] <= '9') || (j < len && s[j] >= '1' && s[j] <= '9')) {
            restore0 = 1;
            i = js; /* the replace removes the separator greedily */
        } else {
            i = js;
        }
    } else if (len >= 2 && s[0] == '8' && s[1] == '6') {
        i = (len > 2 && is_dash_space(s[2])) ? 3 : 2;
    }
    if (restore0) L->core[L->len++] = '0';
    for (; i < len; i++) L->core[L->len++] = s[i];
    for (int j = 0; j < L->len; j++)
        if (is_digit(L->core[j])) L->digits[L->ndig++] = (char)L->core[j];
    L->digits[L->ndig] = 0;
    const char *g = L->digits;
    int area3 = L->ndig >= 3 && g[0] == '0' && ((g[1] == '1' && g[2] == '0') || g[1] == '2');
    int area4 = L->ndig >= 4 && g[0] == '0' && g[1] >= '3' && g[1] <= '9' && is_digit((u32)g[2]) &&
                is_digit((u32)g[3]);
    L->area_ok = area3 || area4;
}

/* ^\(?0[0-9]{2,3}\)?[ \-]?[0-9]{7,8}(?:[ \-][0-9]{1,5})?$ */
static int shape_landline(const u32 *s, int len) {
    for (int paren = 1; paren >= 0; paren--) {
        int i0 = 0;
        if (paren) { if (len == 0 || s[0] != '(') continue; i0 = 1; }
        if (i0 >= len || s[i0] != '0') continue;
        for (int a = 2; a <= 3; a++) {
            if (!digits_at(s, len, i0 + 1, a)) continue;
            int i1 = i0 + 1 + a;
            for (int cp = 1; cp >= 0; cp--) {
                int i2 = i1;
                if (cp) { if (i2 >= len || s[i2] != ')') continue; i2++; }
                for (int sp = 1; sp >= 0; sp--) {
                    int i3 = i2;
                    if (sp) { if (i3 >= len || !is_dash_space(s[i3])) continue; i3++; }
                    for (int b = 7; b <= 8; b++) {
                        if (!digits_at(s, len, i3, b)) continue;
                        int i4 = i3 + b;
                        if (i4 == len) return 1;
                        if (is_dash_space(s[i4])) {
                            int m = len - i4 - 1;
                            if (m >= 1 && m <= 5 && digits_at(s, len, i4 + 1, m)) return 1;
                        }
                    }
                }
            }
        }
    }
    return 0;
}
/* [ \-][0-9]{1,5}$ (searched): the number ends with an extension-like group */
static int ends_ext(const u32 *s, int len) {
    int m = 0;
    while (m < len && is_digit(s[len - 1 - m])) m++;
    return m >= 1 && m <= 5 && len - 1 - m >= 0 && is_dash_space(s[len - 1 - m]);
}

/* ^[0-9]{2,5}(?:[ \-.][0-9]{2,5}){1,4}$ */
static int shape_grouped_digits(const u32 *s, int len) {
    int i = 0, groups = 0;
    while (1) {
        int m = 0;
        while (i + m < len && is_digit(s[i + m])) m++;
        if (m < 2 || m > 5) return 0;
        i += m;
        groups++;
        if (i == len) break;
        if (s[i] != ' ' && s[i] != '-' && s[i] != '.') return 0;
        i++;
    }
    return groups >= 2 && groups <= 5;
}
/* ^(?:19|20)[0-9]{2}[\-./][0-9]{1,2}[\-./][0-9]{1,2}$ */
static inline int is_dsep(u32 c) { return c == '-' || c == '.' || c == '/'; }
static int shape_dotted_date(const u32 *s, int len) {
    if (!digits_at(s, len, 0, 4) || !((s[0] == '1' && s[1] == '9') || (s[0] == '2' && s[1] == '0'))) return 0;
    int i = 4;
    for (int k = 0; k < 2; k++) {
        if (i >= len || !is_dsep(s[i])) return 0;
        i++;
        int m = 0;
        while (i + m < len && is_digit(s[i + m])) m++;
        if (m < 1 || m > 2) return 0;
        i += m;
    }
    return i == len;
}

/* ^\+[1-9][0-9]{0,2}[ \-]?[0-9][0-9 \-]{5,16}[0-9]$ */
static int shape_intl(const u32 *s, int len) {
    if (len < 2 || s[0] != '+' || s[1] < '1' || s[1] > '9') return 0;
    for (int cc = 1; cc <= 3; cc++) {
        if (!digits_at(s, len, 1, cc)) break;
        for (int sp = 1; sp >= 0; sp--) {
            int i = 1 + cc;
            if (sp) { if (i >= len || !is_dash_space(s[i])) continue; i++; }
            int m = len - i;
            if (m < 7 || m > 18 || !is_digit(s[i]) || !is_digit(s[len - 1])) continue;
            int ok = 1;
            for (int j = i; j < len; j++)
                if (!is_digit(s[j]) && !is_dash_space(s[j])) { ok = 0; break; }
            if (ok) return 1;
        }
    }
    return 0;
}
static int intl_possible(const Tok *k) {
    if (!k->dascii) return 0;
    for (int c = 1; c <= 3 && c <= k->dchars; c++) {
        int ok = 1;
        for (int j = 0; j < c; j++)
            if (!is_digit((u32)k->d[j])) ok = 0;
        if (!ok) break;
        int cc = num(k->d, c), rest = k->dlen - c;
        if (rest >= 0 && rest < 32 && g_intl[cc * 32 + rest]) return 1;
    }
    return 0;
}

/* IPv4: four dot-separated octets 0-255 without leading zeros */
static int shape_ipv4(const u32 *s, int len) {
    int i = 0;
    for (int k = 0; k < 4; k++) {
        int m = 0;
        while (i + m < len && is_digit(s[i + m])) m++;
        if (m < 1 || m > 3 || (m > 1 && s[i] == '0')) return 0;
        int v = 0;
        for (int j = 0; j < m; j++) v = v * 10 + (int)(s[i + j] - '0');
        if (v > 255) return 0;
        i += m;
        if (k < 3) {
            if (i >= len || s[i] != '.') return 0;
            i++;
        }
    }
    return i == len;
}

/* ^HH(?::HH){5}$|^HH(?:-HH){5}$ */
static int shape_mac(const u32 *s, int len) {
    if (len != 17) return 0;
    u32 sep = s[2];
    if (sep != ':' && sep != '-') return 0;
    for (int k = 0; k < 6; k++) {
        if (!is_hex(s[3 * k]) || !is_hex(s[3 * k + 1])) return 0;
        if (k && s[3 * k - 1] != sep) return 0;
    }
    return 1;
}

/* ^[0-9\-]+$ */
static int digits_dashes(const u32 *s, int len) {
    for (int j = 0; j < len; j++)
        if (!is_digit(s[j]) && s[j] != '-') return 0;
    return len > 0;
}

/* What ipaddress.IPv6Address accepts (its _ip_int_from_string), for tokens of hex digits and colons. */
static int ipv6_valid(const u32 *s, int len) {
    int plen[10], parts = 0, i = 0;
    while (1) {
        if (parts == 10) return 0; /* more than 9 parts */
        int m = 0;
        while (i + m < len && s[i + m] != ':') m++;
        plen[parts++] = m;
        i += m;
        if (i >= len) break;
        i++; /* the ':' */
    }
    if (parts < 3 || parts > 9) return 0;
    int skip = -1;
    for (int j = 1; j < parts - 1; j++)
        if (plen[j] == 0) {
            if (skip >= 0) return 0;
            skip = j;
        }
    if (skip >= 0) {
        int hi = skip, lo = parts - skip - 1;
        if (plen[0] == 0) {
            if (--hi) return 0;
        }
        if (plen[parts - 1] == 0) {
            if (--lo) return 0;
        }
        if (8 - (hi + lo) < 1) return 0;
        for (int j = 0; j < parts; j++) {
            if (j == skip) continue;
            if ((j == 0 && plen[0] == 0) || (j == parts - 1 && plen[j] == 0)) continue;
            if (plen[j] < 1 || plen[j] > 4) return 0;
        }
    } else {
        if (parts != 8) return 0;
        for (int j = 0; j < parts; j++)
            if (plen[j] < 1 || plen[j] > 4) return 0;
    }
    return 1;
}

/* ^[+\-]?[0-9]{1,3}\.[0-9]{4,} ?, ?[+\-]?[0-9]{1,3}\.[0-9]{4,}$ : the two absolute values */
static int gps_half(const u32 *s, int len, int i, double *v, int *end) {
    char buf[64];
    int b = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) i++;
    int m = 0;
    while (i + m < len && is_digit(s[i + m])) m++;
    if (m < 1 || m > 3) return 0;
    for (int j = 0; j < m; j++) buf[b++] = (char)s[i + j];
    i += m;
    if (i >= len || s[i] != '.') return 0;
    buf[b++] = '.';
    i++;
    m = 0;
    while (i + m < len && is_digit(s[i + m])) m++;
    if (m < 4) return 0;
    for (int j = 0; j < m && b < 60; j++) buf[b++] = (char)s[i + j];
    buf[b] = 0;
    *v = strtod(buf, NULL);
    *end = i + m;
    return 1;
}
static int gps_ok(const u32 *s, int len) {
    double a, b;
    int e;
    if (!gps_half(s, len, 0, &a, &e)) return 0;
    if (e < len && s[e] == ' ') e++;
    if (e >= len || s[e] != ',') return 0;
    e++;
    if (e < len && s[e] == ' ') e++;
    int e2;
    if (!gps_half(s, len, e, &b, &e2) || e2 != len) return 0;
    return (a <= 90 && b <= 180) || (a <= 180 && b <= 90);
}

/* ^([0-9]{4}) ?[\-/.年] ?([0-9]{1,2}) ?[\-/.月] ?([0-9]{1,2}) ?[日号]?$ , or ^(?:19|20)[0-9]{6}$ */
static int dob_ok(const u32 *s, int len) {
    if (len == 8 && all_digits(s, 8) && ((s[0] == '1' && s[1] == '9') || (s[0] == '2' && s[1] == '0'))) {
        char b[8];
        for (int j = 0; j < 8; j++) b[j] = (char)s[j];
        if (valid_date(num(b, 4), num(b + 4, 2), num(b + 6, 2))) return 1;
    }
    if (!digits_at(s, len, 0, 4)) return 0;
    int y = 0, part[2] = {0, 0}, i = 4;
    for (int j = 0; j < 4; j++) y = y * 10 + (int)(s[j] - '0');
    static const u32 marks[2] = {0x5E74, 0x6708};
    for (int k = 0; k < 2; k++) {
        if (i < len && s[i] == ' ') i++;
        if (i >= len || !(is_dsep(s[i]) || s[i] == marks[k])) return 0;
        i++;
        if (i < len && s[i] == ' ') i++;
        int m = 0;
        while (i + m < len && is_digit(s[i + m])) m++;
        if (m < 1 || m > 2) return 0;
        for (int j = 0; j < m; j++) part[k] = part[k] * 10 + (int)(s[i + j] - '0');
        i += m;
    }
    if (i < len && s[i] == ' ') i++;
    if (i < len && (s[i] == 0x65E5 || s[i] == 0x53F7)) i++;
    return i == len && valid_date(y, part[0], part[1]);
}

static int has_char(const u32 *s, int len, u32 c) {
    for (int i = 0; i < len; i++)
        if (s[i] == c) return 1;
    return 0;
}
static int count_char(const u32 *s, int len, u32 c) {
    int k = 0;
    for (int i = 0; i < len; i++) k += s[i] == c;
    return k;
}
static int is_plate_body(u32 c) { return (is_upper(c) && c != 'I' && c != 'O') || is_digit(c); }
static int is_plate_letter(u32 c) { return is_upper(c) && c != 'I' && c != 'O'; }
/* ^[PROV][A-HJ-NP-Z][·•・ ]?(?:[A-HJ-NP-Z0-9]{5}|[DF][A-HJ-NP-Z0-9][0-9]{4}|[0-9]{5}[DF])[挂学警港澳]?$ */
static int plate_body(const u32 *s, int m) {
    if (m == 5) {
        for (int j = 0; j < 5; j++)
            if (!is_plate_body(s[j])) return 0;
        return 1;
    }
    if (m == 6) {
        if ((s[0] == 'D' || s[0] == 'F') && is_plate_body(s[1]) && digits_at(s, 6, 2, 4)) return 1;
        if (digits_at(s, 6, 0, 5) && (s[5] == 'D' || s[5] == 'F')) return 1;
    }
    return 0;
}
static int shape_plate(const u32 *s, int len) {
    if (len < 7 || !is_prov(s[0]) || !is_plate_letter(s[1])) return 0;
    for (int sep = 1; sep >= 0; sep--) {
        int i = 2;
        if (sep) { if (!is_plate_sep(s[2])) continue; i = 3; }
        int m = len - i;
        if (plate_body(s + i, m)) return 1;
        if (m >= 1 && is_plate_suffix(s[len - 1]) && plate_body(s + i, m - 1)) return 1;
    }
    return 0;
}

typedef struct {
    int entity;
    double conf;
    int needs;
} Rule;
static const Rule RULES[] = {
    {E_EMAIL, 0.95, 0}, {E_RID, 0.95, 0},   {E_RID, 0.9, 0},         {E_PHONE, 0.9, 0},  {E_CARD, 0.85, 0},
    {E_IMEI, 0.6, 0},
    {E_IMEI, 0.5, 1},   {E_RID, 0.6, 0},    {E_PHONE, 0.8, 0},       {E_PHONE, 0.5, 1},  {E_PHONE, 0.5, 1},
    {E_USCC, 0.7, 0},   {E_PHONE, 0.75, 0}, {E_IP, 0.75, 0},         {E_MAC, 0.85, 0},   {E_MAC, 0.5, 1},
    {E_IP, 0.8, 0},     {E_PASSPORT, 0.6, 0}, {E_HKMO, 0.6, 0},      {E_TW, 0.6, 0},     {E_TW, 0.6, 1},
    {E_PLATE, 0.85, 0}, {E_GPS, 0.8, 0},    {E_DOB, 0.85, 1},        {E_USCC, 0.7, 1},   {E_PHONE, 0.5, 1},
};
#define N_RULES ((int)(sizeof RULES / sizeof *RULES))

/* gate && condition of rule r (structured.py _rules(), same order) */
static int rule_holds(int r, Tok *k, Land *L, int *land_done) {
    const u32 *s = k->n;
    int len = k->len, dl = k->dlen, alld = k->alld;
    const char *d = k->d;
#define LAND() do { if (!*land_done) { land(k, L); *land_done = 1; } } while (0)
    switch (r) {
    case 0: { /* all of it an e-mail address (a text token always is; a table cell may not be) */
        ssz no_email_until = 0;
        return k->at && alt_email(s, len, 0, &no_email_until) == len;
    }
    case 1: return k->id_ck && shape_id18(s, len) && region6(d) && valid_date(num(d + 6, 4), num(d + 10, 2), num(d + 12, 2));
    case 2: /* a province known, its county code not (a new or merged division stdnum does not list yet) */
        return k->id_ck && shape_id18(s, len) && !region6(d) && g_province[num(d, 2)] &&
               valid_date(num(d + 6, 4), num(d + 10, 2), num(d + 12, 2));
    case 3: {
        if (!(alld && dl >= 11 && dl <= 15 && !k->plus_cc)) return 0;
        return shape_mobile(s, len) && g_mobile[num(d + dl - 11, 3)];
    }
    case 4:
        return alld && k->luhn && dl >= 12 && dl <= 19 && ((all_digits(s, len) && len >= 12 && len <= 19) || shape_card_grouped(s, len)) && card_bin(d, dl);
    case 5:
    case 6:
        if (!(alld && k->luhn && dl == 15)) return 0;
        if (!((len == 15 && all_digits(s, len)) || shape_imei_grouped(s, len))) return 0;
        if (num(d, 2) == 34 || num(d, 2) == 37) return 0;
        return r == 6 || g_imei_rb[num(d, 2)];
    case 7: {
        if (!(alld && dl == 15 && len == 15 && all_digits(s, len) && region6(d))) return 0;
        return valid_date(1900 + num(d + 6, 2), num(d + 8, 2), num(d + 10, 2));
    }
    case 8:
        if (!(alld && dl >= 10 && dl <= 19 && !k->plus_cc && (d[0] == '0' || (d[0] == '8' && d[1] == '6')))) return 0;
        LAND();
        if (L->len < 0 || !L->area_ok || !shape_landline(L->core, L->len)) return 0;
        return (L->ndig >= 10 && L->ndig <= 12) || (ends_ext(L->core, L->len) && L->ndig >= 11 && L->ndig <= 17);
    case 9:
        if (!(alld && dl >= 11 && dl <= 12 && d[0] == '0')) return 0;
        if (!(s[0] == '0' && all_digits(s, len) && len >= 11 && len <= 12)) return 0;
        LAND();
        return L->area_ok;
    case 10:
        return alld && dl >= 7 && dl <= 13 && !k->plus_cc && shape_grouped_digits(s, len) && !shape_dotted_date(s, len);
    case 11: return k->uscc_ck && !alld;
    case 12: return k->plus_cc && shape_intl(s, len) && intl_possible(k);
    case 13: return alld && dl >= 4 && dl <= 12 && shape_ipv4(s, len);
    case 14: return dl == 12 && shape_mac(s, len) && !digits_dashes(s, len);
    case 15: return dl == 12 && shape_mac(s, len);
    case 16: {
        if (!k->colon2) return 0;
        for (int j = 0; j < len; j++)
            if (!is_hex(s[j]) && s[j] != ':') return 0;
        int dbl = 0;
        for (int j = 0; j + 1 < len; j++)
            if (s[j] == ':' && s[j + 1] == ':') { dbl = 1; break; }
        return dbl || count_char(s, len, ':') == 7;
    }
    case 17:
        return !alld && dl == 9 && len == 9 && ((((s[0] == 'E' || s[0] == 'G') && digits_at(s, len, 1, 8))) || (s[0] == 'E' && is_plate_letter(s[1]) && digits_at(s, len, 2, 7)));
    case 18:
        if (alld || !(dl == 9 || dl == 11)) return 0;
        if (len == 9 && (s[0] == 'C' || s[0] == 'W') && digits_at(s, len, 1, 8)) return 1;
        if (len == 9 && s[0] == 'C' && is_plate_letter(s[1]) && digits_at(s, len, 2, 7)) return 1;
        return (s[0] == 'H' || s[0] == 'M') && (len == 9 || len == 11) && digits_at(s, len, 1, len - 1);
    case 19: return !alld && dl == 9 && len == 9 && s[0] == 'L' && digits_at(s, len, 1, 8);
    case 20: return alld && dl == 8 && len == 8 && all_digits(s, len);
    case 21: return !alld && dl >= 8 && dl <= 13 && shape_plate(s, len);
    case 22: return k->comma && gps_ok(s, len);
    case 23: {
        if (!(k->dchars >= 2 && ((d[0] == '1' && d[1] == '9') || (d[0] == '2' && d[1] == '0')))) return 0;
        if (!((alld && dl >= 6 && dl <= 8) || has_char(s, len, 0x5E74))) return 0;
        return dob_ok(s, len);
    }
    case 24: return k->uscc_ck && alld;
    case 25: return alld && dl >= 7 && dl <= 13 && !k->plus_cc && all_digits(s, len);
    }
#undef LAND
    return 0;
}

/* classify() of a token whose features are known */
static void classify_tok(Tok *k, Verdict *v) {
    const u32 *n = k->n;
    int len = k->len;
    Land L;
    int land_done = 0;
    int rule_of = -1, ctx1 = -1, ctx2 = -1;
    /* The rules that can hold, from the token's features: each condition is implied by its rule's gate in
     * rule_holds, so skipping the others changes nothing. The time stamps, hashes, versions and short
     * numbers that fill logs are settled here without trying every rule. */
    int alld = k->alld, dl = k->dlen, pc = k->plus_cc;
    int in = alld && !pc;
    uint32_t can = 0;
    if (k->at) can |= 1u << 0;
    if (k->id_ck) can |= 3u << 1;
    if (in && dl >= 11 && dl <= 15) can |= 1u << 3;
    if (alld && k->luhn && dl >= 12 && dl <= 19) can |= 1u << 4;
    if (alld && k->luhn && dl == 15) can |= 3u << 5;
    if (alld && dl == 15) can |= 1u << 7;
    if (in && dl >= 10 && dl <= 19) can |= 1u << 8;
    if (alld && dl >= 11 && dl <= 12) can |= 1u << 9;
    if (in && dl >= 7 && dl <= 13) can |= (1u << 10) | (1u << 25);
    if (k->uscc_ck) can |= alld ? 1u << 24 : 1u << 11;
    if (pc) can |= 1u << 12;
    if (alld && dl >= 4 && dl <= 12) can |= 1u << 13;
    if (dl == 12) can |= 3u << 14;
    if (k->colon2) can |= 1u << 16;
    if (!alld && dl == 9) can |= (1u << 17) | (1u << 19);
    if (!alld && (dl == 9 || dl == 11)) can |= 1u << 18;
    if (alld && dl == 8) can |= 1u << 20;
    if (!alld && dl >= 8 && dl <= 13) can |= 1u << 21;
    if (k->comma) can |= 1u << 22;
    if (k->dchars >= 2 && ((k->d[0] == '1' && k->d[1] == '9') || (k->d[0] == '2' && k->d[1] == '0'))) can |= 1u << 23;
    if (!can) {
        v->main = v->alt = E_NONE;
        v->conf = v->alt_conf = 0.0;
        v->needs = 0;
        return;
    }
    for (uint32_t left = can; left; left &= left - 1) {
        int r = ctz32(left);
        int needs = RULES[r].needs;
        if (rule_of >= 0 || (needs && ctx2 >= 0)) continue;
        if (!rule_holds(r, k, &L, &land_done)) continue;
        if (!needs) rule_of = r;
        else if (ctx1 < 0) ctx1 = r;
        else ctx2 = r;
    }
    int main = rule_of >= 0 ? rule_of : ctx1;
    int alt = rule_of >= 0 ? ctx1 : ctx2;
    v->main = main >= 0 ? RULES[main].entity : E_NONE;
    v->conf = main >= 0 ? RULES[main].conf : 0.0;
    v->needs = main >= 0 ? RULES[main].needs : 0;
    v->alt = alt >= 0 ? RULES[alt].entity : E_NONE;
    v->alt_conf = alt >= 0 ? RULES[alt].conf : 0.0;
    /* IPv6 syntax, as ipaddress checks it: an invalid one is nothing at all */
    if (v->main == E_IP && has_char(n, len, ':') && !ipv6_valid(n, len)) {
        v->main = v->alt = E_NONE;
    }
}

static void classify(const u32 *n, int len, Verdict *v) {
    Tok k;
    k.n = n;
    k.len = len;
    features(&k);
    classify_tok(&k, v);
}

/* ------------------------------------------------------------------------------------- context -- */
/* The nearest context word before a value: ContextRules' "^.*(?:words)" (greedy, so the alternation that
 * STARTS last wins; at one start, the longest word) with ASCII-letter words needing a non-letter or the
 * window start on their left. Returns the end of that word in the window, or -1. */
#define BUCKET(c) ((((c) * 2654435761u) >> 16) & 1023)
static inline int word_at(const u32 *w, int wl, int q, const Word *x) {
    if (q + x->len > wl) return 0;
    for (int j = 0; j < x->len; j++)
        if (w[q + j] != x->chars[j]) return 0;
    return 1;
}
/* the word of ws that ends last among those starting at p (or, bounded, at p + 1 after a non-letter): its
 * end, or -1 */
static inline int word_ending_at(const u32 *w, int wl, const WordSet *ws, int p) {
    int best = -1, best_end = -1;
    const int *b = ws->bucket[BUCKET(w[p])];
    for (int j = 0; j < ws->bucket_n[BUCKET(w[p])]; j++) {
        const Word *x = &ws->words[b[j]];
        if (best >= 0 && b[j] > best) break;
        if ((!x->bounded || p == 0) && word_at(w, wl, p, x)) { best = b[j]; best_end = p + x->len; break; }
    }
    if (p + 1 < wl && !is_alpha(w[p])) {
        const int *b2 = ws->bucket[BUCKET(w[p + 1])];
        for (int j = 0; j < ws->bucket_n[BUCKET(w[p + 1])]; j++) {
            if (best >= 0 && b2[j] > best) break;
            const Word *x = &ws->words[b2[j]];
            if (x->bounded && word_at(w, wl, p + 1, x)) { best = b2[j]; best_end = p + 1 + x->len; break; }
        }
    }
    return best >= 0 ? best_end : -1;
}
static int last_word_end(const u32 *w, const uint32_t *first, int wl, const WordSet *ws) {
    uint32_t bit = ws->bit;
    for (int p = wl - 1; p >= 0; p--) {
        /* most characters start no word, here nor (a bounded word) just after a non-letter */
        if (!(first[p] & bit) && !(p + 1 < wl && (first[p + 1] & bit) && !is_alpha(w[p]))) continue;
        int e = word_ending_at(w, wl, ws, p);
        if (e >= 0) return e;
    }
    return -1;
}

/* A word right after the value that names it ("085 175 7641-Office"): up to two separators, then the word
 * (case-insensitive); a word that starts with an ASCII letter must not run on into more letters. */
static inline int is_after_sep(u32 c) {
    return c == ' ' || c == '-' || c == '(' || c == 0xFF08 || c == ':' || c == 0xFF1A;
}
static int after_word(const u32 *t, ssz N, ssz end, const WordSet *ws) {
    for (int k = 0; k <= 2; k++) {
        ssz q = end + k;
        if (k > 0 && (q - 1 >= N || !is_after_sep(t[q - 1]))) break;
        for (int j = 0; j < ws->n; j++) {
            const Word *x = &ws->words[j];
            if (q + x->len > N) continue;
            int ok = 1;
            for (int m = 0; m < x->len && ok; m++) {
                u32 c = t[q + m];
                ok = ((c >= 'A' && c <= 'Z') ? c + 32 : c) == x->chars[m];
            }
            if (!ok) continue;
            ssz r = q + x->len;
            if (x->bounded && r < N && t[r] < 128 && is_alpha(t[r])) continue;
            return 1;
        }
    }
    return 0;
}

/* ContextRules.adjust_expr_frame for one candidate: the confidence, or -1 when it is dropped. */
static int is_ws(u32 c);
/* The context window before a value, lowercased, and where the last negative word in it ends: what every
 * reading of the value shares. */
typedef struct {
    u32 w[256];
    uint32_t first[256];
    int wl, neg;
} Window;
static void window_at(const u32 *t, ssz start, Window *W) {
    ssz lo = start - g_window;
    if (lo < 0) lo = 0;
    for (ssz i = start - 1; i >= lo; i--)
        if (t[i] == '\n') { lo = i + 1; break; }
    ssz end = start;
    /* A value alone on its line ("Phone:\n467 3395") takes its context from the end of the line above. */
    ssz b = start - 1;
    while (b >= 0 && t[b] != '\n' && is_ws(t[b])) b--;
    if (b > 0 && t[b] == '\n') {
        end = b;
        lo = end - g_window;
        if (lo < 0) lo = 0;
        for (ssz i = end - 1; i >= lo; i--)
            if (t[i] == '\n') { lo = i + 1; break; }
    }
    int wl = (int)(end - lo);
    for (int i = 0; i < wl; i++) {
        u32 c = t[lo + i];
        W->w[i] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        W->first[i] = g_first[W->w[i] & 4095];
    }
    W->wl = wl;
    W->neg = last_word_end(W->w, W->first, wl, &g_neg);
}
/* ContextRules.adjust_expr_frame for one reading of the value at start: its confidence, or -1 when it is
 * dropped. */
static double adjust_in(const Window *W, const u32 *t, ssz N, ssz start, int len, int entity, double conf,
                        int needs) {
    int neg = W->neg;
    int pos = g_has_pos[entity] ? last_word_end(W->w, W->first, W->wl, &g_pos[entity]) : -1;
    int has_pos = (pos >= 0 && (neg < 0 || pos >= neg)) ||
                  (neg < 0 && g_has_after[entity] && after_word(t, N, start + len, &g_after[entity]));
    if (has_pos) return needs ? (conf > 0.85 ? conf : 0.85) : (conf + g_boost > 1.0 ? 1.0 : conf + g_boost);
    if (needs) return -1;
    if (neg >= 0) return conf - g_penalty < 0 ? 0.0 : conf - g_penalty;
    return conf;
}
/* ---------------------------------------------------------------------------------- the scanner -- */
typedef struct {
    int8_t *ent;
    int64_t *start, *end;
    double *conf;
    ssz n, cap;
    int oom;
} Hits;

static void push(Hits *h, int ent, ssz s, ssz e, double c) {
    if (h->n == h->cap) {
        ssz cap = h->cap ? h->cap * 2 : 1024;
        int8_t *a = realloc(h->ent, cap);
        int64_t *b = realloc(h->start, cap * 8);
        int64_t *d = realloc(h->end, cap * 8);
        double *f = realloc(h->conf, cap * 8);
        if (a) h->ent = a;
        if (b) h->start = b;
        if (d) h->end = d;
        if (f) h->conf = f;
        if (!a || !b || !d || !f) { h->oom = 1; return; }
        h->cap = cap;
    }
    h->ent[h->n] = (int8_t)ent;
    h->start[h->n] = s;
    h->end[h->n] = e;
    h->conf[h->n++] = c;
}

static void emit(Hits *h, const u32 *t, ssz N, ssz start, int len, const Verdict *v) {
    ssz end = start + len;
    Window W;
    window_at(t, start, &W);
    double c = adjust_in(&W, t, N, start, len, v->main, v->conf, v->needs);
    /* a plate glued to more letters or digits is part of a longer code */
    int glued = end < N && t[end] < 128 && is_alnum(t[end]);
    if (c >= 0 && !(v->main == E_PLATE && glued)) push(h, v->main, start, end, c);
    if (v->alt != E_NONE) {
        c = adjust_in(&W, t, N, start, len, v->alt, v->alt_conf, 1);
        if (c >= 0 && !(v->alt == E_PLATE && glued)) push(h, v->alt, start, end, c);
    }
}

#define MIN_CANDIDATE 6

/* [A-Za-z][0-9]{6}|[0-9]{6}[A-Za-z]|[0-9][xX][0-9] anywhere (letters glued to a long digit run, or a
 * telephone extension: "345-899-3560x4587") */
static int letter_glued(const u32 *n, int len) {
    int digits = 0;
    for (int i = 0; i < len; i++) {
        if (i + 2 < len && is_digit(n[i]) && (n[i + 1] | 0x20) == 'x' && is_digit(n[i + 2])) return 1;
        if (is_digit(n[i])) {
            digits++;
            if (digits >= 6 && ((i - 6 >= 0 && is_alpha(n[i - 6])) || (i + 1 < len && is_alpha(n[i + 1])))) return 1;
        } else digits = 0;
    }
    return 0;
}

static int is_run_sep(u32 c) { return c == '-' || c == '.' || c == ':' || c == '/' || c == ' '; }
/* second chance for a token that was nothing as a whole (see _subtokens in structured.py) */
static void pieces(Hits *h, const u32 *t, ssz N, ssz tok_start, const u32 *n, int len) {
    int i = 0;
    while (i <= len) {
        int j = i;
        while (j < len && n[j] != ' ') j++;
        const u32 *s = n + i;
        int m = j - i, letters = 0, hex = 0, lower = 0, upper = 0, ascii = 1;
        for (int q = 0; q < m; q++) {
            u32 c = s[q];
            if (c >= 128) ascii = 0;
            if (is_hex(c)) hex++;
            if (is_alpha(c)) {
                letters++;
                if (c >= 'a') lower++; else upper++;
            }
        }
        /* hex strings (hashes, UUID parts, keyed pseudonyms) get no second chance */
        int hexlike = m >= 12 && hex == m && letters > 0 && !(lower && upper);
        if (m >= MIN_CANDIDATE && !hexlike) {
            Verdict v;
            if (!(letters && ascii)) {
                classify(s, m, &v);
                if (v.main != E_NONE) emit(h, t, N, tok_start + i, m, &v);
            } else {
                /* digit runs: [0-9]{17}[Xx] | \+?[0-9](?:[0-9]|[\-.:/ ][0-9])* */
                int p = 0;
                while (p < m) {
                    int e = -1;
                    if (p + 18 <= m && digits_at(s, m, p, 17) && (s[p + 17] == 'X' || s[p + 17] == 'x')) e = p + 18;
                    else {
                        int q = p;
                        if (s[q] == '+') q++;
                        if (q < m && is_digit(s[q])) {
                            q++;
                            while (q < m) {
                                if (is_digit(s[q])) q++;
                                else if (is_run_sep(s[q]) && q + 1 < m && is_digit(s[q + 1])) q += 2;
                                else break;
                            }
                            e = q;
                        }
                    }
                    if (e < 0) { p++; continue; }
                    if (e - p >= MIN_CANDIDATE) {
                        classify(s + p, e - p, &v);
                        if (v.main != E_NONE) emit(h, t, N, tok_start + i + p, e - p, &v);
                    }
                    p = e;
                }
            }
        }
        i = j + 1;
    }
}

static void scan_ucs4(const u32 *t, ssz N, Hits *h) {
    ssz no_email_until = 0, p = 0;
    ssz at_pos = -1, at_from = 0; /* the next '@', and where the local-part run before it starts */
    u32 stack[256];
    u32 *buf = stack;
    ssz bufcap = 256;
    while (p < N && !h->oom) {
        if (!can_start(t[p])) { p++; continue; }
        if (p >= no_email_until) {
            /* An e-mail address can start only where the local-part characters run on to the next '@':
             * before that run no attempt is made (and none scans the text again). */
            if (p > at_pos) {
                at_pos = p;
                while (at_pos < N && t[at_pos] != '@') at_pos++;
                at_from = at_pos;
                while (at_from > 0 && is_local(t[at_from - 1])) at_from--;
            }
            if (p < at_from) no_email_until = at_from;
        }
        ssz e, q = p; /* q: the end of the run of ASCII letters at p */
        if (is_alpha(t[p])) {
            q = p + 1;
            while (q < N && is_alpha(t[q])) q++;
        }
        if (q - p >= 5) {
            /* Five letters or more: the generic number (at most two letters first), a MAC address (a
             * separator third) and IPv6 (a colon within four hex digits) cannot start here; only an
             * e-mail's local part can. */
            e = p >= no_email_until ? alt_email(t, N, p, &no_email_until) : -1;
        } else {
            e = match_at(t, N, p, &no_email_until);
        }
        if (e < 0) {
            /* Inside a run of ASCII letters a token can only start where what follows the run allows one:
             * the generic number wants a digit within two letters, a MAC address a separator after a hex
             * pair, IPv6 a colon within four hex digits, and an e-mail's local part was tried from the
             * run's first letter. Skipping the rest of the run keeps words from costing a failed match
             * per letter (prose and logs are mostly words). */
            if (q > p) {
                u32 c = q < N ? t[q] : 0;
                ssz from = q;
                if (is_D(c) || c >= 0xFF21) from = q - 2;   /* a digit (or a full-width letter) next */
                else if (c == ':' || c == '-') from = q - 4; /* a hex group or pair, then its separator */
                p = from > p + 1 ? from : p + 1;
            } else {
                p++;
            }
            continue;
        }
        ssz L = e - p;
        if (L >= MIN_CANDIDATE && L < (1 << 30)) {
            if (L > bufcap) {
                u32 *nb = malloc(L * sizeof(u32));
                if (!nb) { h->oom = 1; break; }
                if (buf != stack) free(buf);
                buf = nb;
                bufcap = L;
            }
            /* normalized and its features taken in one pass */
            int spaced = 0, colons = 0, digits = 0;
            Tok k;
            k.n = buf;
            k.len = (int)L;
            features_start(&k);
            for (ssz i = 0; i < L; i++) {
                u32 c = norm(t[p + i]);
                buf[i] = c;
                spaced |= c == ' ';
                FEATURE_STEP(&k, c, colons, digits);
            }
            features_finish(&k, colons, digits);
            Verdict v;
            classify_tok(&k, &v);
            if (v.main != E_NONE) emit(h, t, N, p, (int)L, &v);
            /* (a token of digits and separators has no letter to be glued to) */
            else if (spaced || (!k.alld && letter_glued(buf, (int)L))) pieces(h, t, N, p, buf, (int)L);
        }
        p = e;
    }
    if (buf != stack) free(buf);
}

/* ---------------------------------------------------------------------------------- Python API -- */
static PyObject *hits_result(Hits *h) {
    if (h->oom) {
        free(h->ent); free(h->start); free(h->end); free(h->conf);
        return PyErr_NoMemory();
    }
    PyObject *r = Py_BuildValue("(y#y#y#y#)", h->ent ? (char *)h->ent : "", h->n,
                                h->start ? (char *)h->start : "", h->n * 8, h->end ? (char *)h->end : "", h->n * 8,
                                h->conf ? (char *)h->conf : "", h->n * 8);
    free(h->ent); free(h->start); free(h->end); free(h->conf);
    return r;
}

/* The code points of the text last scanned go into a buffer kept for this thread: a fresh 16 MB one per 4 MB
 * chunk cost its page faults every time. After scan_utf8 it holds the decoded text (kept_len code points),
 * which findings(None, ...) then reads instead of a str. */
static _Thread_local u32 *g_kept;
static _Thread_local ssz g_kept_cap;
static _Thread_local ssz g_kept_len = -1; /* -1: the buffer holds no decoded text */
/* where the newlines of that decoded text are (code-point offsets, increasing): findings take their line
 * numbers from here instead of reading the text again */
static _Thread_local ssz *g_nl;
static _Thread_local ssz g_nl_n, g_nl_cap;

static int kept_reserve(ssz n) {
    if (n + 1 > g_kept_cap) {
        u32 *nb = realloc(g_kept, (n + 1) * sizeof(u32));
        if (!nb) return 0;
        g_kept = nb;
        g_kept_cap = n + 1;
    }
    return 1;
}
static void kept_trim(ssz n) {
    if (g_kept_cap > (ssz)1 << 24 && n < g_kept_cap / 4) { /* a huge line once: give the memory back */
        free(g_kept);
        g_kept = NULL;
        g_kept_cap = 0;
        g_kept_len = -1;
    }
}

static PyObject *py_scan(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    if (!g_configured) { PyErr_SetString(PyExc_RuntimeError, "_cscan.configure() was not called"); return NULL; }
    ssz N = PyUnicode_GET_LENGTH(text);
    Hits h = {0};
    g_kept_len = -1;
    if (N == 0) return hits_result(&h);
    if (!kept_reserve(N)) return PyErr_NoMemory();
    u32 *t = g_kept;
    if (!PyUnicode_AsUCS4(text, t, g_kept_cap, 0)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    scan_ucs4(t, N, &h);
    Py_END_ALLOW_THREADS
    kept_trim(N);
    return hits_result(&h);
}

/* Strict UTF-8 (what bytes.decode('utf-8') accepts: no overlong forms, surrogates or code points past
 * U+10FFFF) into code points; the number of code points, or -1 at the first invalid byte. The newlines'
 * offsets are kept on the way (g_nl). */
static int nl_push(ssz at) {
    if (g_nl_n == g_nl_cap) {
        ssz cap = g_nl_cap ? g_nl_cap * 2 : 4096;
        ssz *p = realloc(g_nl, cap * sizeof(ssz));
        if (!p) return 0;
        g_nl = p;
        g_nl_cap = cap;
    }
    g_nl[g_nl_n++] = at;
    return 1;
}
/* Returns -2 when the newline positions found no memory. */
static ssz utf8_decode(const uint8_t *s, ssz n, u32 *out, ssz *newlines) {
    ssz i = 0, k = 0;
    g_nl_n = 0;
    while (i < n) {
        /* a run of ASCII, measured eight bytes at a time, is copied in one loop the compiler vectorizes */
        if (s[i] < 0x80) {
#ifdef __SSE2__
            /* sixteen ASCII bytes at a time: widened to code points, newlines counted from a mask */
            const __m128i zero = _mm_setzero_si128(), lf = _mm_set1_epi8('\n');
            while (i + 16 <= n) {
                __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
                if (_mm_movemask_epi8(v)) break;
                unsigned lines = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
                for (; lines; lines &= lines - 1)
                    if (!nl_push(k + ctz32(lines))) return -2;
                __m128i lo = _mm_unpacklo_epi8(v, zero), hi = _mm_unpackhi_epi8(v, zero);
                _mm_storeu_si128((__m128i *)(out + k), _mm_unpacklo_epi16(lo, zero));
                _mm_storeu_si128((__m128i *)(out + k + 4), _mm_unpackhi_epi16(lo, zero));
                _mm_storeu_si128((__m128i *)(out + k + 8), _mm_unpacklo_epi16(hi, zero));
                _mm_storeu_si128((__m128i *)(out + k + 12), _mm_unpackhi_epi16(hi, zero));
                i += 16;
                k += 16;
            }
            if (i >= n || s[i] >= 0x80) continue;
#endif
            ssz r = i + 1;
            for (;;) {
                uint64_t w;
                if (r + 8 > n) break;
                memcpy(&w, s + r, 8);
                if (w & 0x8080808080808080ULL) break;
                r += 8;
            }
            while (r < n && s[r] < 0x80) r++;
            ssz m = r - i;
            const uint8_t *src = s + i;
            u32 *dst = out + k;
            for (ssz j = 0; j < m; j++) {
                dst[j] = src[j];
                if (src[j] == '\n' && !nl_push(k + j)) return -2;
            }
            i = r;
            k += m;
            continue;
        }
        /* a run of three-byte characters (CJK), without the ladder below for each */
        while (i + 3 <= n && (s[i] & 0xF0) == 0xE0) {
            uint8_t c0 = s[i], c1 = s[i + 1], c2 = s[i + 2];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return -1;
            if ((c0 == 0xE0 && c1 < 0xA0) || (c0 == 0xED && c1 >= 0xA0)) return -1; /* overlong, surrogate */
            out[k++] = ((u32)(c0 & 0x0F) << 12) | ((u32)(c1 & 0x3F) << 6) | (c2 & 0x3F);
            i += 3;
        }
        if (i >= n) break;
        if (s[i] < 0x80) continue;
        uint8_t c = s[i];
        if (c < 0xC2) {
            return -1;
        } else if (c < 0xE0) {
            if (i + 2 > n || (s[i + 1] & 0xC0) != 0x80) return -1;
            out[k++] = ((u32)(c & 0x1F) << 6) | (s[i + 1] & 0x3F);
            i += 2;
        } else if (c < 0xF0) {
            if (i + 3 > n) return -1;
            uint8_t c1 = s[i + 1], c2 = s[i + 2];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return -1;
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return -1; /* overlong, surrogate */
            out[k++] = ((u32)(c & 0x0F) << 12) | ((u32)(c1 & 0x3F) << 6) | (c2 & 0x3F);
            i += 3;
        } else if (c < 0xF5) {
            if (i + 4 > n) return -1;
            uint8_t c1 = s[i + 1], c2 = s[i + 2], c3 = s[i + 3];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return -1;
            if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) return -1; /* overlong, past U+10FFFF */
            out[k++] = ((u32)(c & 0x07) << 18) | ((u32)(c1 & 0x3F) << 12) | ((u32)(c2 & 0x3F) << 6) | (c3 & 0x3F);
            i += 4;
        } else {
            return -1;
        }
    }
    *newlines = g_nl_n;
    return k;
}

/* scan_utf8(data) -> (characters, newlines, entity, start, end, confidence) for UTF-8 bytes, or None when
 * they are not valid UTF-8 (the caller decodes them with replacement and calls scan). Decoding here spares
 * the caller a str of the text; findings(None, ...) then reads the decoded text this scan kept. */
static PyObject *py_scan_utf8(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) return NULL;
    if (!g_configured) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_RuntimeError, "_cscan.configure() was not called");
        return NULL;
    }
    g_kept_len = -1;
    kept_trim(b.len);
    if (!kept_reserve(b.len)) {
        PyBuffer_Release(&b);
        return PyErr_NoMemory();
    }
    Hits h = {0};
    ssz N, nl = 0;
    Py_BEGIN_ALLOW_THREADS
    N = utf8_decode(b.buf, b.len, g_kept, &nl);
    if (N > 0) scan_ucs4(g_kept, N, &h);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (N == -2) return PyErr_NoMemory();
    if (N < 0) Py_RETURN_NONE;
    g_kept_len = N;
    PyObject *cols = hits_result(&h);
    if (!cols) return NULL;
    PyObject *res = Py_BuildValue("(nnO)", N, nl, cols);
    Py_DECREF(cols);
    return res;
}

static int is_ws(u32 c) {
    return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* classify_arrow(offsets, data, count, offset_bytes): whole values of an Arrow string column (int32 or int64
 * offsets) -> (entity int8, confidence float64, needs_context uint8) */
static PyObject *py_classify_arrow(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer off, data;
    ssz count;
    int wide;
    if (!PyArg_ParseTuple(args, "y*y*ni", &off, &data, &count, &wide)) return NULL;
    if (!g_configured) {
        PyBuffer_Release(&off); PyBuffer_Release(&data);
        PyErr_SetString(PyExc_RuntimeError, "_cscan.configure() was not called");
        return NULL;
    }
    if (off.len < (count + 1) * (wide ? 8 : 4)) {
        PyBuffer_Release(&off); PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "offsets buffer too short");
        return NULL;
    }
    PyObject *ent = PyBytes_FromStringAndSize(NULL, count);
    PyObject *conf = PyBytes_FromStringAndSize(NULL, count * 8);
    PyObject *needs = PyBytes_FromStringAndSize(NULL, count);
    if (!ent || !conf || !needs) {
        Py_XDECREF(ent); Py_XDECREF(conf); Py_XDECREF(needs);
        PyBuffer_Release(&off); PyBuffer_Release(&data);
        return NULL;
    }
    int8_t *E = (int8_t *)PyBytes_AS_STRING(ent);
    double *C = (double *)PyBytes_AS_STRING(conf);
    uint8_t *X = (uint8_t *)PyBytes_AS_STRING(needs);
    const unsigned char *D = data.buf;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    u32 stack[256];
    u32 *buf = stack;
    ssz cap = 256;
    for (ssz i = 0; i < count; i++) {
        int64_t a = wide ? ((const int64_t *)off.buf)[i] : ((const int32_t *)off.buf)[i];
        int64_t b = wide ? ((const int64_t *)off.buf)[i + 1] : ((const int32_t *)off.buf)[i + 1];
        E[i] = E_NONE; C[i] = 0.0; X[i] = 0;
        if (a < 0 || b < a || b > data.len) { bad = 1; break; }
        ssz nb = (ssz)(b - a);
        if (nb == 0) continue; /* (short cells still count: "::1" is an IPv6 address) */
        if (nb > cap) {
            u32 *g = malloc(nb * sizeof(u32));
            if (!g) { bad = 2; break; }
            if (buf != stack) free(buf);
            buf = g;
            cap = nb;
        }
        /* UTF-8 -> code points, normalized */
        ssz L = 0;
        for (int64_t q = a; q < b;) {
            unsigned char c0 = D[q];
            u32 c;
            if (c0 < 0x80) { c = c0; q += 1; }
            else if (c0 < 0xE0 && q + 1 < b) { c = ((c0 & 0x1F) << 6) | (D[q + 1] & 0x3F); q += 2; }
            else if (c0 < 0xF0 && q + 2 < b) { c = ((c0 & 0x0F) << 12) | ((D[q + 1] & 0x3F) << 6) | (D[q + 2] & 0x3F); q += 3; }
            else if (q + 3 < b) { c = ((c0 & 0x07) << 18) | ((D[q + 1] & 0x3F) << 12) | ((D[q + 2] & 0x3F) << 6) | (D[q + 3] & 0x3F); q += 4; }
            else { c = 0xFFFD; q = b; }
            buf[L++] = norm(c);
        }
        ssz s = 0, e = L;
        while (s < e && is_ws(buf[s])) s++;
        while (e > s && is_ws(buf[e - 1])) e--;
        if (e - s == 0 || e - s > (1 << 30)) continue;
        Verdict v;
        classify(buf + s, (int)(e - s), &v);
        E[i] = (int8_t)v.main;
        C[i] = v.conf;
        X[i] = (uint8_t)v.needs;
    }
    if (buf != stack) free(buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&off);
    PyBuffer_Release(&data);
    if (bad) {
        Py_DECREF(ent); Py_DECREF(conf); Py_DECREF(needs);
        if (bad == 2) return PyErr_NoMemory();
        PyErr_SetString(PyExc_ValueError, "offsets outside the data buffer");
        return NULL;
    }
    return Py_BuildValue("(NNN)", ent, conf, needs);
}

static int load_words(PyObject *list, WordSet *ws) {
    /* list of lowercased words, longest first */
    ssz n = PyList_Size(list);
    if (n < 0) return -1;
    ws->words = calloc(n ? n : 1, sizeof(Word));
    ws->n = (int)n;
    int counts[1024] = {0};
    for (ssz i = 0; i < n; i++) {
        PyObject *w = PyList_GetItem(list, i);
        if (!PyUnicode_Check(w)) { PyErr_SetString(PyExc_TypeError, "context words must be str"); return -1; }
        Word *x = &ws->words[i];
        x->len = (int)PyUnicode_GET_LENGTH(w);
        x->chars = (u32 *)PyUnicode_AsUCS4Copy(w);
        if (!x->chars || x->len == 0) { PyErr_SetString(PyExc_ValueError, "empty context word"); return -1; }
        x->bounded = x->chars[0] < 128 && is_alpha(x->chars[0]);
        counts[BUCKET(x->chars[0])]++;
        g_first[x->chars[0] & 4095] |= ws->bit;
    }
    for (int b = 0; b < 1024; b++) {
        ws->bucket[b] = calloc(counts[b] ? counts[b] : 1, sizeof(int));
        ws->bucket_n[b] = 0;
    }
    for (int i = 0; i < ws->n; i++) {
        int b = BUCKET(ws->words[i].chars[0]);
        ws->bucket[b][ws->bucket_n[b]++] = i;
    }
    return 0;
}

/* configure(regions, mobile, imei_rb, intl, today, window, boost, penalty, negative, positive, after)
 * regions: bytes of 1,000,000 flags; mobile: 1000 flags; imei_rb: 100 flags; intl: 32,000 flags;
 * negative: list[str]; positive, after: lists of N_ENT lists of str (lowercased, longest first). Called once. */
static PyObject *py_configure(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer reg, mob, rb, intl;
    int today, window;
    double boost, penalty;
    PyObject *neg, *pos, *after;
    if (g_configured) Py_RETURN_NONE;
    if (!PyArg_ParseTuple(args, "y*y*y*y*iiddO!O!O!", &reg, &mob, &rb, &intl, &today, &window, &boost, &penalty,
                          &PyList_Type, &neg, &PyList_Type, &pos, &PyList_Type, &after))
        return NULL;
    int ok = reg.len == 1000000 && mob.len == 1000 && rb.len == 100 && intl.len == 32000 &&
             PyList_Size(pos) == N_ENT && PyList_Size(after) == N_ENT && window > 0 && window <= 256;
    if (ok) {
        g_region = malloc(1000000);
        if (g_region) {
            memcpy(g_region, reg.buf, 1000000);
            memset(g_province, 0, sizeof g_province);
            for (int c = 0; c < 1000000; c++)
                if (g_region[c]) g_province[c / 10000] = 1;
        }
        memcpy(g_mobile, mob.buf, 1000);
        memcpy(g_imei_rb, rb.buf, 100);
        memcpy(g_intl, intl.buf, 32000);
    }
    PyBuffer_Release(&reg); PyBuffer_Release(&mob); PyBuffer_Release(&rb); PyBuffer_Release(&intl);
    if (!ok) { PyErr_SetString(PyExc_ValueError, "configure(): wrong table sizes"); return NULL; }
    if (!g_region) return PyErr_NoMemory();
    g_today = today;
    g_window = window;
    g_boost = boost;
    g_penalty = penalty;
    memset(g_first, 0, sizeof g_first);
    g_neg.bit = 1;
    for (int e = 0; e < N_ENT; e++) g_pos[e].bit = 1u << (1 + e);
    if (load_words(neg, &g_neg) < 0) return NULL;
    for (int e = 0; e < N_ENT; e++) {
        PyObject *l = PyList_GetItem(pos, e);
        if (!PyList_Check(l)) { PyErr_SetString(PyExc_TypeError, "positive words: a list per entity"); return NULL; }
        if (load_words(l, &g_pos[e]) < 0) return NULL;
        g_has_pos[e] = g_pos[e].n > 0;
        PyObject *a = PyList_GetItem(after, e);
        if (!PyList_Check(a)) { PyErr_SetString(PyExc_TypeError, "after words: a list per entity"); return NULL; }
        if (load_words(a, &g_after[e]) < 0) return NULL;
        g_has_after[e] = g_after[e].n > 0;
    }
    for (unsigned i = 0; i < sizeof PROVINCES / sizeof *PROVINCES; i++) g_prov[PROVINCES[i] - 0x4E00] = 1;
    init_uscc();
    g_configured = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ findings, column by column (scan → report) -- */
/* A scan of a dense file yields hundreds of thousands of findings a second; a Python object per finding
 * (hit, finding, row dict, JSON line) cost more than detecting them. Here the hits of a text are
 * thresholded, settled where they overlap, located (line numbers), masked and rendered as JSON lines in C,
 * as flat columns. The rules are those of piguard.detect.findings_from_hits, masking.mask_value and
 * report.finding_line, which stay the readable definitions the tests hold this code to. */

typedef struct {
    char *p;
    ssz n, cap;
    int oom;
} Buf;

static void buf_reserve(Buf *b, ssz more) {
    if (b->oom || b->n + more <= b->cap) return;
    ssz cap = b->cap ? b->cap : 256;
    while (cap < b->n + more) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) { b->oom = 1; return; }
    b->p = q;
    b->cap = cap;
}
static inline void buf_put(Buf *b, const char *s, ssz k) {
    buf_reserve(b, k);
    if (b->oom) return;
    memcpy(b->p + b->n, s, k);
    b->n += k;
}
static inline void buf_str(Buf *b, const char *s) { buf_put(b, s, (ssz)strlen(s)); }
static inline void buf_byte(Buf *b, char c) {
    buf_reserve(b, 1);
    if (!b->oom) b->p[b->n++] = c;
}
static inline void buf_stars(Buf *b, ssz k) {
    if (k <= 0) return;
    buf_reserve(b, k);
    if (b->oom) return;
    memset(b->p + b->n, '*', k);
    b->n += k;
}
/* UTF-8, lone surrogates encoded as three bytes (surrogatepass) so no code point is lost */
static inline void buf_utf8(Buf *b, Py_UCS4 c) {
    buf_reserve(b, 4);
    if (b->oom) return;
    char *o = b->p + b->n;
    if (c < 0x80) { o[0] = (char)c; b->n += 1; }
    else if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); b->n += 2; }
    else if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F)); o[2] = (char)(0x80 | (c & 0x3F));
        b->n += 3;
    } else {
        o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
        b->n += 4;
    }
}
static inline void buf_int(Buf *b, long long v) { /* "%lld", without printf's cost per call */
    static const char pairs[] = "0001020304050607080910111213141516171819202122232425262728293031323334353637383940"
                                "4142434445464748495051525354555657585960616263646566676869707172737475767778798081"
                                "828384858687888990919293949596979899";
    char t[24];
    int k = 24;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) { /* two digits a step */
        unsigned d = (unsigned)(u % 100);
        u /= 100;
        t[--k] = pairs[2 * d + 1];
        t[--k] = pairs[2 * d];
    }
    do {
        t[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) t[--k] = '-';
    buf_put(b, t + k, 24 - k);
}

/* A slice of the scanned text. */
typedef struct {
    int kind;
    const void *data;
    ssz s, n;
} Slice;
static inline Py_UCS4 at(const Slice *v, ssz i) { return PyUnicode_READ(v->kind, v->data, v->s + i); }
static void put_range(Buf *b, const Slice *v, ssz a, ssz e) {
    for (ssz i = a; i < e; i++) buf_utf8(b, at(v, i));
}

/* masking.py: the kinds of mask_value, chosen per entity in Python (masking.mask_kind) */
enum { K_DEFAULT = 0, K_KEEP, K_PHONE, K_EMAIL, K_IP, K_PERSON, K_ADDRESS, K_GPS, K_DOB };

static inline int mask_sep(Py_UCS4 c) { /* masking._SEPARATORS */
    switch (c) {
    case ' ': case '\t': case '\n': case '\r': case 0x3000: case '-': case 0xFF0D: case 0x2014: case '.':
    case 0xB7: case 0x2022: case ':': case 0xFF1A: case '/': case '(': case ')': case 0xFF08: case 0xFF09:
    case '+': case 0xFF0B:
        return 1;
    }
    return 0;
}

/* masking._mask_keep on v[a:n] */
static void mask_keep(Buf *b, const Slice *v, ssz a, int first, int last) {
    ssz n = v->n - a, m = 0;
    int seps = 0;
    for (ssz i = a; i < v->n; i++) {
        if (mask_sep(at(v, i))) seps = 1;
        else m++;
    }
    if (!seps) {
        if (n <= first + last) { first = first < n / 3 ? first : (int)(n / 3); last = last < n / 3 ? last : (int)(n / 3); }
        put_range(b, v, a, a + first);
        buf_stars(b, n - first - last);
        if (last) put_range(b, v, v->n - last, v->n);
        return;
    }
    if (m <= first + last) { first = first < m / 3 ? first : (int)(m / 3); last = last < m / 3 ? last : (int)(m / 3); }
    ssz lo = a, hi = v->n;
    for (int k = 0; k < first; lo++)
        if (!mask_sep(at(v, lo))) k++;
    for (int k = 0; k < last;) {
        hi--;
        if (!mask_sep(at(v, hi))) k++;
    }
    put_range(b, v, a, lo);
    for (ssz i = lo; i < hi; i++) {
        Py_UCS4 c = at(v, i);
        if (mask_sep(c)) buf_utf8(b, c);
        else buf_byte(b, '*');
    }
    put_range(b, v, hi, v->n);
}

/* masking._COUNTRY_PREFIX: ^(?:(?:\+|＋|00)86[ \-]?|[+＋][1-9][0-9]{0,2}[ \-]) ; its length or 0 */
static ssz phone_prefix(const Slice *v) {
    ssz n = v->n;
    if (n == 0) return 0;
    Py_UCS4 c0 = at(v, 0);
    int plus = c0 == '+' || c0 == 0xFF0B;
    ssz j = plus ? 1 : (n >= 2 && c0 == '0' && at(v, 1) == '0') ? 2 : 0;
    if (j && j + 2 <= n && at(v, j) == '8' && at(v, j + 1) == '6') {
        ssz k = j + 2;
        if (k < n && (at(v, k) == ' ' || at(v, k) == '-')) k++;
        return k;
    }
    if (!plus || n < 3 || at(v, 1) < '1' || at(v, 1) > '9') return 0;
    for (int d = 2; d >= 0; d--) {
        int ok = 2 + d < n;
        for (int q = 0; q < d && ok; q++) ok = at(v, 2 + q) >= '0' && at(v, 2 + q) <= '9';
        if (ok && (at(v, 2 + d) == ' ' || at(v, 2 + d) == '-')) return 3 + d;
    }
    return 0;
}

static void mask_default(Buf *b, const Slice *v) {
    if (v->n <= 12) { buf_stars(b, v->n); return; }
    put_range(b, v, 0, 1);
    buf_stars(b, 8);
    buf_byte(b, '(');
    buf_int(b, v->n);
    buf_str(b, " chars)");
}

static void mask(Buf *b, const Slice *v, int kind, int first, int last) {
    ssz n = v->n;
    if (n == 0) return;
    switch (kind) {
    case K_PHONE: {
        ssz k = phone_prefix(v);
        put_range(b, v, 0, k);
        mask_keep(b, v, k, 3, 4);
        return;
    }
    case K_KEEP: mask_keep(b, v, 0, first, last); return;
    case K_EMAIL: {
        ssz atpos = -1;
        for (ssz i = n - 1; i >= 0; i--)
            if (at(v, i) == '@') { atpos = i; break; }
        if (atpos < 0) break;
        if (atpos > 0) put_range(b, v, 0, 1);
        buf_str(b, "***@");
        put_range(b, v, atpos + 1, n);
        return;
    }
    case K_IP: {
        for (ssz i = 0; i < n; i++)
            if (at(v, i) == ':') { put_range(b, v, 0, i); buf_str(b, ":****"); return; }
        ssz dots = 0, second = -1;
        for (ssz i = 0; i < n; i++)
            if (at(v, i) == '.' && ++dots == 2) second = i;
        if (dots < 2) { put_range(b, v, 0, n); return; }
        put_range(b, v, 0, second);
        for (ssz k = 0; k < dots - 1; k++) buf_str(b, ".*");
        return;
    }
    case K_PERSON: {
        Py_UCS4 c = at(v, 0);
        buf_utf8(b, c);
        buf_stars(b, c < 128 ? 3 : (n - 1 > 1 ? n - 1 : 1));
        return;
    }
    case K_ADDRESS: {
        ssz keep = n / 3;
        keep = keep > 6 ? 6 : keep;
        keep = keep < 2 ? 2 : keep;
        put_range(b, v, 0, keep < n ? keep : n);
        buf_str(b, "****");
        return;
    }
    case K_GPS: { /* (\d+\.\d)\d+ -> \1*** */
        ssz i = 0;
        while (i < n) {
            if (!Py_UNICODE_ISDECIMAL(at(v, i))) { buf_utf8(b, at(v, i)); i++; continue; }
            ssz j = i;
            while (j < n && Py_UNICODE_ISDECIMAL(at(v, j))) j++;
            if (j + 2 < n && at(v, j) == '.' && Py_UNICODE_ISDECIMAL(at(v, j + 1)) && Py_UNICODE_ISDECIMAL(at(v, j + 2))) {
                put_range(b, v, i, j + 2);
                buf_str(b, "***");
                ssz k = j + 2;
                while (k < n && Py_UNICODE_ISDECIMAL(at(v, k))) k++;
                i = k;
            } else {
                put_range(b, v, i, j);
                i = j;
            }
        }
        return;
    }
    case K_DOB: {
        ssz y = n < 4 ? n : 4;
        int digits = 1;
        for (ssz i = 0; i < y; i++) digits &= Py_UNICODE_ISDIGIT(at(v, i)) != 0;
        if (digits) { put_range(b, v, 0, y); buf_str(b, "-**-**"); }
        else buf_str(b, "****-**-**");
        return;
    }
    }
    mask_default(b, v);
}

/* round(x, 3) as Python rounds (correctly rounded through the decimal string); detectors emit few values */
static double g_round_key[64], g_round_val[64];
static int g_round_n;
static double round3(double x) {
    for (int i = 0; i < g_round_n; i++)
        if (g_round_key[i] == x) return g_round_val[i];
    double r = x;
    char *s = PyOS_double_to_string(x, 'f', 3, 0, NULL);
    if (s) {
        r = PyOS_string_to_double(s, NULL, NULL);
        PyMem_Free(s);
        if (r == -1.0 && PyErr_Occurred()) { PyErr_Clear(); r = x; }
    } else PyErr_Clear();
    if (g_round_n < 64) { g_round_key[g_round_n] = x; g_round_val[g_round_n++] = r; }
    return r;
}

/* stable merge sort of hit indices by start */
static void sort_by_start(ssz *idx, ssz *tmp, ssz n, const int64_t *start) {
    if (n < 2) return;
    ssz h = n / 2;
    sort_by_start(idx, tmp, h, start);
    sort_by_start(idx + h, tmp, n - h, start);
    if (start[idx[h - 1]] <= start[idx[h]]) return;
    ssz i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = start[idx[j]] < start[idx[i]] ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(ssz));
}

/* newlines in text[a:b], one tight loop per string kind (counted across every character of a chunk) */
static ssz count_newlines(int kind, const void *data, ssz a, ssz b) {
    ssz n = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *t = data;
        for (ssz i = a; i < b; i++) n += t[i] == '\n';
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *t = data;
        for (ssz i = a; i < b; i++) n += t[i] == '\n';
    } else {
        const Py_UCS4 *t = data;
        for (ssz i = a; i < b; i++) n += t[i] == '\n';
    }
    return n;
}

#define N_FIRSTS 8
/* findings(text, entity u8, start i64, end i64, confidence f64, detector u8, allowed, kinds, keep_first,
 *          keep_last, min_confidence, base_offset, base_line, with_values)
 * -> (count, entity, detector, start, end, line, confidence, masked, masked_offsets, values|None,
 *     value_offsets|None, counts, firsts): bytes columns of the findings, in text order. allowed, kinds,
 * keep_first and keep_last hold one byte per entity code; counts is int64 per code, firsts the indices of
 * each code's first N_FIRSTS findings (-1 past the last). */
static PyObject *py_findings(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *text;
    Py_buffer eb, sb, nb, cb, db, ab, kb, fb, lb;
    double min_conf;
    long long base_offset, base_line;
    int with_values;
    if (!PyArg_ParseTuple(args, "Oy*y*y*y*y*y*y*y*y*dLLp", &text, &eb, &sb, &nb, &cb, &db, &ab, &kb, &fb, &lb,
                          &min_conf, &base_offset, &base_line, &with_values))
        return NULL;
    /* None: the text scan_utf8 decoded last in this thread */
    int from_kept = text == Py_None;
    ssz from_len = g_kept_len, nl_i = 0;
    const u32 *from_buf = g_kept;
    PyObject *res = NULL;
    ssz *idx = NULL, *tmp = NULL, *kept = NULL;
    Buf mb = {0}, vb = {0}, cols[6] = {{0}};
    ssz n = eb.len, ncodes = ab.len;
    const uint8_t *ent = eb.buf, *det = db.buf, *allowed = ab.buf, *kinds = kb.buf, *kfirst = fb.buf, *klast = lb.buf;
    const int64_t *start = sb.buf, *end = nb.buf;
    const double *conf = cb.buf;
    if (from_kept ? from_len < 0 : !PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, from_kept ? "findings: no text was decoded by scan_utf8" : "findings: text must be str");
        goto done;
    }
    ssz len = from_kept ? from_len : PyUnicode_GET_LENGTH(text);
    if (sb.len != n * 8 || nb.len != n * 8 || cb.len != n * 8 || (db.len != n && db.len != 0) || kb.len != ncodes ||
        fb.len != ncodes || lb.len != ncodes || ncodes > 256) {
        PyErr_SetString(PyExc_ValueError, "findings: column lengths disagree");
        goto done;
    }
    idx = malloc((n ? n : 1) * sizeof(ssz));
    tmp = malloc((n ? n : 1) * sizeof(ssz));
    kept = malloc((n ? n : 1) * sizeof(ssz));
    if (!idx || !tmp || !kept) { PyErr_NoMemory(); goto done; }
    ssz m = 0;
    int sorted = 1;
    for (ssz i = 0; i < n; i++) {
        if (ent[i] >= ncodes || !allowed[ent[i]] || !(conf[i] >= min_conf)) continue;
        if (start[i] < 0 || end[i] < start[i] || end[i] > len) {
            PyErr_SetString(PyExc_ValueError, "findings: a hit lies outside the text");
            goto done;
        }
        if (m && start[i] < start[idx[m - 1]]) sorted = 0;
        idx[m++] = i;
    }
    if (!sorted) sort_by_start(idx, tmp, m, start);
    /* detect.resolve_overlaps: the most confident of overlapping hits, then the longest, then the first */
    ssz k = 0;
    for (ssz q = 0; q < m; q++) {
        ssz h = idx[q];
        if (k && start[h] < end[kept[k - 1]]) {
            ssz p = kept[k - 1];
            if (conf[h] > conf[p] || (conf[h] == conf[p] && end[h] - start[h] > end[p] - start[p])) kept[k - 1] = h;
            continue;
        }
        kept[k++] = h;
    }
    int kind = from_kept ? PyUnicode_4BYTE_KIND : PyUnicode_KIND(text);
    const void *data = from_kept ? (const void *)from_buf : PyUnicode_DATA(text);
    int64_t counts[256] = {0}, firsts[256 * N_FIRSTS];
    for (ssz i = 0; i < 256 * N_FIRSTS; i++) firsts[i] = -1;
    int64_t moff = 0, voff = 0;
    buf_put(&cols[5], (const char *)&moff, 8);
    Buf voffs = {0}, cbuf = {0};
    if (with_values) buf_put(&voffs, (const char *)&voff, 8);
    long long line = base_line;
    ssz pos = 0;
    for (ssz q = 0; q < k; q++) {
        ssz h = kept[q];
        uint8_t code = ent[h];
        if (from_kept) {
            while (nl_i < g_nl_n && g_nl[nl_i] < start[h]) nl_i++;
            line = base_line + nl_i;
        } else if (start[h] > pos) {
            line += count_newlines(kind, data, pos, start[h]);
            pos = start[h];
        }
        if (counts[code] < N_FIRSTS) firsts[code * N_FIRSTS + counts[code]] = q;
        counts[code]++;
        int64_t s64 = start[h] + base_offset, e64 = end[h] + base_offset, l64 = line;
        double c = round3(conf[h]);
        uint8_t d = db.len ? det[h] : 0;
        buf_byte(&cols[0], (char)code);
        buf_byte(&cols[1], (char)d);
        buf_put(&cols[2], (const char *)&s64, 8);
        buf_put(&cols[3], (const char *)&e64, 8);
        buf_put(&cols[4], (const char *)&l64, 8);
        buf_put(&cbuf, (const char *)&c, 8);
        Slice v = {kind, data, start[h], end[h] - start[h]};
        mask(&mb, &v, kinds[code], kfirst[code], klast[code]);
        moff = mb.n;
        buf_put(&cols[5], (const char *)&moff, 8);
        if (with_values) {
            put_range(&vb, &v, 0, v.n);
            voff = vb.n;
            buf_put(&voffs, (const char *)&voff, 8);
        }
    }
    int oom = mb.oom || vb.oom || voffs.oom || cbuf.oom;
    for (int i = 0; i < 6; i++) oom |= cols[i].oom;
    if (oom) {
        PyErr_NoMemory();
    } else {
        PyObject *values = Py_None, *value_offs = Py_None;
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        if (with_values) {
            Py_DECREF(values);
            Py_DECREF(value_offs);
            values = PyBytes_FromStringAndSize(vb.p ? vb.p : "", vb.n);
            value_offs = PyBytes_FromStringAndSize(voffs.p, voffs.n);
        }
        res = Py_BuildValue("(ny#y#y#y#y#y#y#y#NNy#y#)", k, cols[0].p ? cols[0].p : "", cols[0].n,
                            cols[1].p ? cols[1].p : "", cols[1].n, cols[2].p ? cols[2].p : "", cols[2].n,
                            cols[3].p ? cols[3].p : "", cols[3].n, cols[4].p ? cols[4].p : "", cols[4].n,
                            cbuf.p ? cbuf.p : "", cbuf.n, mb.p ? mb.p : "", mb.n, cols[5].p, cols[5].n, values,
                            value_offs, (const char *)counts, ncodes * 8, (const char *)firsts,
                            ncodes * N_FIRSTS * 8);
    }
    free(cbuf.p);
    free(voffs.p);
done:
    free(idx); free(tmp); free(kept); free(mb.p); free(vb.p);
    for (int i = 0; i < 6; i++) free(cols[i].p);
    PyBuffer_Release(&eb); PyBuffer_Release(&sb); PyBuffer_Release(&nb); PyBuffer_Release(&cb);
    PyBuffer_Release(&db); PyBuffer_Release(&ab); PyBuffer_Release(&kb); PyBuffer_Release(&fb);
    PyBuffer_Release(&lb);
    return res;
}

/* JSON string content (no quotes) of UTF-8 bytes as json.dumps(..., ensure_ascii=False) writes it; a lone
 * surrogate (three bytes ED A0..BF xx) becomes a \udxxx escape so the output stays valid UTF-8. */
static void json_escape(Buf *b, const char *p, ssz n) {
    static const char hex[] = "0123456789abcdef";
    ssz run = 0;
    for (ssz i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char u[12];
        ssz skip = 0;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c < 0x20) {
            switch (c) {
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            default:
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0'; u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = 0;
                esc = u;
            }
        } else if (c == 0xED && i + 2 < n && ((unsigned char)p[i + 1] & 0xE0) == 0xA0) {
            unsigned cp = ((c & 0x0F) << 12) | (((unsigned char)p[i + 1] & 0x3F) << 6) | ((unsigned char)p[i + 2] & 0x3F);
            u[0] = '\\'; u[1] = 'u';
            for (int k = 0; k < 4; k++) u[2 + k] = hex[(cp >> (12 - 4 * k)) & 15];
            u[6] = 0;
            esc = u;
            skip = 2;
        }
        if (!esc) { run++; continue; }
        buf_put(b, p + i - run, run);
        run = 0;
        buf_str(b, esc);
        i += skip;
    }
    buf_put(b, p + n - run, run);
}

/* repr() of a confidence, as json.dumps writes a float (few distinct values: cached) */
static double g_repr_key[64];
static char g_repr_val[64][32];
static int g_repr_n;
static const char *conf_repr(double x) {
    for (int i = 0; i < g_repr_n; i++)
        if (g_repr_key[i] == x) return g_repr_val[i];
    static char scratch[32];
    char *s = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!s) { PyErr_Clear(); snprintf(scratch, sizeof scratch, "%.17g", x); return scratch; }
    char *slot = g_repr_n < 64 ? g_repr_val[g_repr_n] : scratch;
    snprintf(slot, 32, "%s", s);
    PyMem_Free(s);
    if (g_repr_n < 64) g_repr_key[g_repr_n++] = x;
    return slot;
}

/* render(format, count, entity, detector, start, end, line, confidence, masked, masked_offsets, values|None,
 *        value_offsets|None, path_json, entity_json, detector_json, sensitive) -> bytes
 * format 0: JSON lines (report.finding_line, one per line); 1: items of a JSON array, each after ",\n  ";
 * 2: SARIF results, each after ",\n". path_json is the path as a JSON string (quotes included); entity_json
 * and detector_json are lists of JSON strings per code; sensitive holds one flag byte per entity code. */
static PyObject *py_render(PyObject *Py_UNUSED(self), PyObject *args) {
    int fmt;
    ssz count;
    Py_buffer eb, db, sb, nb, lb, cb, mb, mob, pb;
    PyObject *values, *voffs, *ents, *dets, *sens;
    if (!PyArg_ParseTuple(args, "iny*y*y*y*y*y*y*y*OOy*O!O!S", &fmt, &count, &eb, &db, &sb, &nb, &lb, &cb, &mb, &mob,
                          &values, &voffs, &pb, &PyList_Type, &ents, &PyList_Type, &dets, &sens))
        return NULL;
    PyObject *res = NULL;
    Buf o = {0};
    Py_buffer vb = {0}, vob = {0};
    int have_values = values != Py_None;
    if (have_values && (PyObject_GetBuffer(values, &vb, PyBUF_SIMPLE) < 0 ||
                        PyObject_GetBuffer(voffs, &vob, PyBUF_SIMPLE) < 0)) {
        have_values = -1;
        goto done;
    }
    ssz ne = PyList_GET_SIZE(ents), nd = PyList_GET_SIZE(dets);
    if (eb.len != count || db.len != count || sb.len != count * 8 || nb.len != count * 8 || lb.len != count * 8 ||
        cb.len != count * 8 || mob.len != (count + 1) * 8 || PyBytes_GET_SIZE(sens) < ne ||
        (have_values == 1 && vob.len != (count + 1) * 8)) {
        PyErr_SetString(PyExc_ValueError, "render: column lengths disagree");
        goto done;
    }
    for (ssz i = 0; i < ne; i++)
        if (!PyBytes_Check(PyList_GET_ITEM(ents, i))) { PyErr_SetString(PyExc_TypeError, "render: entity names as bytes"); goto done; }
    for (ssz i = 0; i < nd; i++)
        if (!PyBytes_Check(PyList_GET_ITEM(dets, i))) { PyErr_SetString(PyExc_TypeError, "render: detector names as bytes"); goto done; }
    const uint8_t *ent = eb.buf, *det = db.buf;
    const int64_t *start = sb.buf, *end = nb.buf, *line = lb.buf, *moff = mob.buf, *voff = vob.buf;
    const double *conf = cb.buf;
    const char *masked = mb.buf, *vals = vb.buf, *sensitive = PyBytes_AS_STRING(sens);
    buf_reserve(&o, count * (fmt == 2 ? 320 : 200));
    for (ssz i = 0; i < count; i++) {
        if (ent[i] >= ne || det[i] >= nd || moff[i] > moff[i + 1] || moff[i + 1] > mb.len ||
            (have_values == 1 && (voff[i] > voff[i + 1] || voff[i + 1] > vb.len))) {
            PyErr_SetString(PyExc_ValueError, "render: a code or an offset is out of range");
            goto done;
        }
        PyObject *ej = PyList_GET_ITEM(ents, ent[i]), *dj = PyList_GET_ITEM(dets, det[i]);
        const char *cr = conf_repr(conf[i]);
        if (fmt == 2) {
            buf_str(&o, ",\n{\"ruleId\": ");
            buf_put(&o, PyBytes_AS_STRING(ej), PyBytes_GET_SIZE(ej));
            buf_str(&o, sensitive[ent[i]] ? ", \"level\": \"error\", \"message\": {\"text\": \""
                                         : ", \"level\": \"warning\", \"message\": {\"text\": \"");
            buf_put(&o, PyBytes_AS_STRING(ej) + 1, PyBytes_GET_SIZE(ej) - 2);
            buf_str(&o, " found: ");
            json_escape(&o, masked + moff[i], moff[i + 1] - moff[i]);
            buf_str(&o, "\"}, \"locations\": [{\"physicalLocation\": {\"artifactLocation\": {\"uri\": ");
            buf_put(&o, pb.buf, pb.len);
            buf_str(&o, "}, \"region\": {\"startLine\": ");
            buf_int(&o, line[i]);
            buf_str(&o, ", \"charOffset\": ");
            buf_int(&o, start[i]);
            buf_str(&o, ", \"charLength\": ");
            buf_int(&o, end[i] - start[i]);
            buf_str(&o, "}}}], \"properties\": {\"confidence\": ");
            buf_str(&o, cr);
            buf_str(&o, ", \"detector\": ");
            buf_put(&o, PyBytes_AS_STRING(dj), PyBytes_GET_SIZE(dj));
            buf_str(&o, "}}");
            continue;
        }
        buf_str(&o, fmt == 1 ? ",\n  {\"path\": " : "{\"path\": ");
        buf_put(&o, pb.buf, pb.len);
        buf_str(&o, ", \"line\": ");
        buf_int(&o, line[i]);
        buf_str(&o, ", \"start\": ");
        buf_int(&o, start[i]);
        buf_str(&o, ", \"end\": ");
        buf_int(&o, end[i]);
        buf_str(&o, ", \"entity\": ");
        buf_put(&o, PyBytes_AS_STRING(ej), PyBytes_GET_SIZE(ej));
        buf_str(&o, ", \"confidence\": ");
        buf_str(&o, cr);
        buf_str(&o, sensitive[ent[i]] ? ", \"sensitive\": true, \"masked\": \"" : ", \"sensitive\": false, \"masked\": \"");
        json_escape(&o, masked + moff[i], moff[i + 1] - moff[i]);
        buf_str(&o, "\", \"detector\": ");
        buf_put(&o, PyBytes_AS_STRING(dj), PyBytes_GET_SIZE(dj));
        if (have_values == 1) {
            buf_str(&o, ", \"value\": \"");
            json_escape(&o, vals + voff[i], voff[i + 1] - voff[i]);
            buf_byte(&o, '"');
        }
        buf_str(&o, fmt == 1 ? "}" : "}\n");
    }
    if (o.oom) PyErr_NoMemory();
    else res = PyBytes_FromStringAndSize(o.p ? o.p : "", o.n);
done:
    free(o.p);
    if (have_values == 1) { PyBuffer_Release(&vb); PyBuffer_Release(&vob); }
    PyBuffer_Release(&eb); PyBuffer_Release(&db); PyBuffer_Release(&sb); PyBuffer_Release(&nb);
    PyBuffer_Release(&lb); PyBuffer_Release(&cb); PyBuffer_Release(&mb); PyBuffer_Release(&mob);
    PyBuffer_Release(&pb);
    return res;
}

/* ------------------------------------------------------------ lines that are not plain ASCII (for regexes) -- */
/* nonascii_lines(text) -> (lines, sub_starts int64, orig_starts int64): the text's lines that hold a
 * character beyond ASCII, joined (each keeps its line break), with where each starts in the joined text and
 * in the text. The Chinese rules' regexes then scan a log's Chinese lines only, not its plain-ASCII ones
 * (detect/_fastre.cjk_spans). A text without such lines, or with nothing else, is returned as it is. */
static PyObject *py_nonascii_lines(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    ssz n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Buf subs = {0}, origs = {0};
    ssz kept = 0;
    int64_t at = 0;
    if (PyUnicode_IS_ASCII(text)) return Py_BuildValue("(sy#y#)", "", "", (ssz)0, "", (ssz)0);
    for (ssz a = 0; a < n;) {
        ssz b = a;
        int wide = 0;
        while (b < n) {
            Py_UCS4 c = PyUnicode_READ(kind, data, b++);
            if (c >= 128) wide = 1;
            if (c == '\n') break;
        }
        if (wide) {
            int64_t o = a;
            buf_put(&subs, (const char *)&at, 8);
            buf_put(&origs, (const char *)&o, 8);
            at += b - a;
            kept += b - a;
        }
        a = b;
    }
    if (subs.oom || origs.oom) { free(subs.p); free(origs.p); return PyErr_NoMemory(); }
    PyObject *sub;
    if (kept == n) {
        sub = text;
        Py_INCREF(sub);
    } else {
        sub = PyUnicode_New(kept, PyUnicode_MAX_CHAR_VALUE(text));
        if (!sub) { free(subs.p); free(origs.p); return NULL; }
        const int64_t *ss = (const int64_t *)subs.p, *os = (const int64_t *)origs.p;
        ssz m = subs.n / 8;
        for (ssz i = 0; i < m; i++) {
            ssz len = (i + 1 < m ? ss[i + 1] : kept) - ss[i];
            PyUnicode_CopyCharacters(sub, ss[i], text, os[i], len);
        }
    }
    PyObject *res = Py_BuildValue("(Ny#y#)", sub, subs.p ? subs.p : "", subs.n, origs.p ? origs.p : "", origs.n);
    free(subs.p);
    free(origs.p);
    return res;
}

/* has_capitalised(text) -> bool: whether an ASCII capital letter is followed by an ASCII small one anywhere
 * (the regex [A-Z][a-z]): whether the English name rules have anything to read. A log without one (INFO, GET,
 * hex ids) is read once here at memory speed instead of by a regex engine. */
#define CAP_LOOP(T)                                                                                          \
    do {                                                                                                     \
        const T *d = (const T *)data;                                                                        \
        for (ssz a = 0; a + 1 < n; a += 256) { /* blocks without an early exit, so the loop vectorises */    \
            ssz b = a + 256 < n - 1 ? a + 256 : n - 1;                                                       \
            unsigned hit = 0;                                                                                \
            for (ssz i = a; i < b; i++)                                                                      \
                hit |= ((T)(d[i] - 'A') < 26u) & ((T)(d[i + 1] - 'a') < 26u);                                \
            if (hit) Py_RETURN_TRUE;                                                                         \
        }                                                                                                    \
    } while (0)
static PyObject *py_has_capitalised(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    ssz n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND: CAP_LOOP(Py_UCS1); break;
    case PyUnicode_2BYTE_KIND: CAP_LOOP(Py_UCS2); break;
    default: CAP_LOOP(Py_UCS4); break;
    }
    Py_RETURN_FALSE;
}
#undef CAP_LOOP

/* ------------------------------------------------------------------------ CRF decoding (the name model) -- */
/* Viterbi paths and per-position tag marginals of a linear-chain CRF over a padded batch, for the name model
 * (detect/_lac.py): numpy's version stepped through each position in Python and cost as much as the GRU
 * encoder itself. Same arithmetic as _lac.viterbi_reference / posteriors_reference: the first maximum wins a
 * tie, positions past a text's length neither move its score nor its path. */
#define VITERBI_BODY(REAL)                                                                                   \
    for (ssz b = 0; b < B && !oom; b++) {                                                                    \
        const REAL *eb = (const REAL *)em + b * W * T;                                                       \
        ssz n = len[b] < 1 ? 1 : (len[b] > W ? W : len[b]);                                                  \
        REAL *score = malloc(T * sizeof(REAL)), *next = malloc(T * sizeof(REAL));                           \
        REAL *trt = malloc(T * T * sizeof(REAL));                                                            \
        int32_t *back = malloc(W * T * sizeof(int32_t));                                                     \
        if (!score || !next || !back || !trt) {                                                              \
            free(score); free(next); free(back); free(trt); oom = 1; break;                                  \
        }                                                                                                    \
        for (ssz i = 0; i < T; i++)                                                                          \
            for (ssz j = 0; j < T; j++) trt[j * T + i] = ((const REAL *)tr)[i * T + j];                      \
        for (ssz j = 0; j < T; j++) score[j] = eb[j];                                                        \
        for (ssz t = 1; t < n; t++) {                                                                        \
            for (ssz j = 0; j < T; j++) {                                                                    \
                ssz arg = 0;                                                                                 \
                const REAL *col = trt + j * T;                                                               \
                REAL best = score[0] + col[0];                                                               \
                for (ssz i = 1; i < T; i++) {                                                                \
                    REAL c = score[i] + col[i];                                                              \
                    if (c > best) { best = c; arg = i; }                                                     \
                }                                                                                            \
                back[t * T + j] = (int32_t)arg;                                                              \
                next[j] = best + eb[t * T + j];                                                              \
            }                                                                                                \
            memcpy(score, next, T * sizeof(REAL));                                                           \
        }                                                                                                    \
        ssz arg = 0;                                                                                         \
        for (ssz j = 1; j < T; j++) if (score[j] > score[arg]) arg = j;                                      \
        int32_t *pb = out + b * W;                                                                           \
        pb[n - 1] = (int32_t)arg;                                                                            \
        for (ssz t = n - 1; t > 0; t--) pb[t - 1] = back[t * T + pb[t]];                                     \
        free(score); free(next); free(back); free(trt);                                                      \
    }

/* crf_viterbi(emissions, transitions, lengths, batch, width, tags, double) -> int32 paths [batch, width] as
 * bytes; emissions [batch, width, tags] and transitions [tags, tags] are float32, or float64 when double. */
static PyObject *py_crf_viterbi(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer emb, trb, lb;
    ssz B, W, T;
    int dbl;
    if (!PyArg_ParseTuple(args, "y*y*y*nnnp", &emb, &trb, &lb, &B, &W, &T, &dbl)) return NULL;
    ssz size = dbl ? 8 : 4;
    PyObject *res = NULL;
    if (B < 0 || W < 1 || T < 1 || emb.len < B * W * T * size || trb.len < T * T * size || lb.len < B * 8) {
        PyErr_SetString(PyExc_ValueError, "crf_viterbi: buffers do not match the shape");
        goto done;
    }
    res = PyBytes_FromStringAndSize(NULL, B * W * 4);
    if (!res) goto done;
    int32_t *out = (int32_t *)PyBytes_AS_STRING(res);
    memset(out, 0, B * W * 4);
    const void *em = emb.buf, *tr = trb.buf;
    const int64_t *len = lb.buf;
    int oom = 0;
    Py_BEGIN_ALLOW_THREADS
    if (dbl) { VITERBI_BODY(double) } else { VITERBI_BODY(float) }
    Py_END_ALLOW_THREADS
    if (oom) { Py_CLEAR(res); PyErr_NoMemory(); }
done:
    PyBuffer_Release(&emb); PyBuffer_Release(&trb); PyBuffer_Release(&lb);
    return res;
}

/* crf_posteriors(emissions float64, transitions float64, lengths int64, batch, width, tags) -> float64
 * marginals [batch, width, tags] as bytes: forward-backward in probability space, each step rescaled. */
static PyObject *py_crf_posteriors(PyObject *Py_UNUSED(self), PyObject *args) {
    Py_buffer emb, trb, lb;
    ssz B, W, T;
    if (!PyArg_ParseTuple(args, "y*y*y*nnn", &emb, &trb, &lb, &B, &W, &T)) return NULL;
    PyObject *res = NULL;
    double *et = NULL, *ett = NULL, *alpha = NULL, *beta = NULL, *e = NULL, *tmp = NULL;
    if (B < 0 || W < 1 || T < 1 || emb.len < B * W * T * 8 || trb.len < T * T * 8 || lb.len < B * 8) {
        PyErr_SetString(PyExc_ValueError, "crf_posteriors: buffers do not match the shape");
        goto done;
    }
    res = PyBytes_FromStringAndSize(NULL, B * W * T * 8);
    et = malloc(T * T * 8); ett = malloc(T * T * 8); alpha = malloc(W * T * 8); beta = malloc(W * T * 8); e = malloc(W * T * 8);
    tmp = malloc(T * 8);
    if (!res || !et || !ett || !alpha || !beta || !e || !tmp) { Py_CLEAR(res); PyErr_NoMemory(); goto done; }
    double *post = (double *)PyBytes_AS_STRING(res);
    const double *em = emb.buf, *tr = trb.buf;
    const int64_t *len = lb.buf;
    Py_BEGIN_ALLOW_THREADS
    double tmax = tr[0];
    for (ssz k = 1; k < T * T; k++) if (tr[k] > tmax) tmax = tr[k];
    for (ssz k = 0; k < T * T; k++) et[k] = exp(tr[k] - tmax);
    for (ssz i = 0; i < T; i++)
        for (ssz j = 0; j < T; j++) ett[j * T + i] = et[i * T + j];
    for (ssz b = 0; b < B; b++) {
        const double *eb = em + b * W * T;
        for (ssz t = 0; t < W; t++) {
            double m = eb[t * T];
            for (ssz j = 1; j < T; j++) if (eb[t * T + j] > m) m = eb[t * T + j];
            for (ssz j = 0; j < T; j++) e[t * T + j] = exp(eb[t * T + j] - m);
        }
        double z = 0;
        for (ssz j = 0; j < T; j++) z += e[j];
        for (ssz j = 0; j < T; j++) alpha[j] = e[j] / z;
        for (ssz t = 1; t < W; t++) {
            z = 0;
            for (ssz j = 0; j < T; j++) {
                double a = 0;
                const double *prev = alpha + (t - 1) * T, *col = ett + j * T;
                for (ssz i = 0; i < T; i++) a += prev[i] * col[i];
                alpha[t * T + j] = a * e[t * T + j];
                z += alpha[t * T + j];
            }
            for (ssz j = 0; j < T; j++) alpha[t * T + j] /= z;
        }
        for (ssz j = 0; j < T; j++) beta[(W - 1) * T + j] = 1.0;
        for (ssz t = W - 2; t >= 0; t--) {
            if (t + 1 >= len[b]) {
                for (ssz j = 0; j < T; j++) beta[t * T + j] = 1.0;
                continue;
            }
            for (ssz j = 0; j < T; j++) tmp[j] = e[(t + 1) * T + j] * beta[(t + 1) * T + j];
            z = 0;
            for (ssz i = 0; i < T; i++) {
                double v = 0;
                for (ssz j = 0; j < T; j++) v += et[i * T + j] * tmp[j];
                beta[t * T + i] = v;
                z += v;
            }
            for (ssz i = 0; i < T; i++) beta[t * T + i] /= z;
        }
        double *pb = post + b * W * T;
        for (ssz t = 0; t < W; t++) {
            z = 0;
            for (ssz j = 0; j < T; j++) z += pb[t * T + j] = alpha[t * T + j] * beta[t * T + j];
            for (ssz j = 0; j < T; j++) pb[t * T + j] /= z;
        }
    }
    Py_END_ALLOW_THREADS
done:
    free(et); free(ett); free(alpha); free(beta); free(e); free(tmp);
    PyBuffer_Release(&emb); PyBuffer_Release(&trb); PyBuffer_Release(&lb);
    return res;
}

static PyMethodDef methods[] = {
    {"configure", py_configure, METH_VARARGS, "Load the rule tables and context words (once)."},
    {"scan", py_scan, METH_VARARGS, "scan(text) -> (entity int8, start int64, end int64, confidence float64) as bytes"},
    {"scan_utf8", py_scan_utf8, METH_VARARGS,
     "scan_utf8(data) -> (characters, newlines, (entity, start, end, confidence)) of UTF-8 bytes, or None if invalid"},
    {"classify_arrow", py_classify_arrow, METH_VARARGS,
     "classify_arrow(offsets, data, count, wide) -> (entity int8, confidence float64, needs uint8) as bytes"},
    {"findings", py_findings, METH_VARARGS,
     "findings(text, entity, start, end, confidence, detector, allowed, kinds, keep_first, keep_last, min_confidence, "
     "base_offset, base_line, with_values) -> the findings as columns"},
    {"render", py_render, METH_VARARGS, "render(format, count, columns..., path_json, entities, detectors, sensitive) -> bytes"},
    {"nonascii_lines", py_nonascii_lines, METH_VARARGS,
     "nonascii_lines(text) -> (joined lines beyond ASCII, their starts there, their starts in text)"},
    {"has_capitalised", py_has_capitalised, METH_VARARGS,
     "has_capitalised(text) -> whether [A-Z][a-z] occurs in text"},
    {"crf_viterbi", py_crf_viterbi, METH_VARARGS,
     "crf_viterbi(emissions, transitions, lengths, batch, width, tags, double) -> int32 paths as bytes"},
    {"crf_posteriors", py_crf_posteriors, METH_VARARGS,
     "crf_posteriors(emissions, transitions, lengths, batch, width, tags) -> float64 marginals as bytes"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cscan", "Compiled structured detection.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cscan(void) { return PyModule_Create(&module); }

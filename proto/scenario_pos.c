/* proto/scenario_pos.c — a small position scanner over already valid JSON. */
#include "scenario_pos.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting deeper than jansson's own default limit cannot reach us (jansson rejects it
 * first); this bound only keeps the recursion finite on any input. */
#define POS_MAX_DEPTH 2048

typedef struct {
    char *path; /* owned, checker notation */
    int line;   /* value: first character, 1-based */
    int col;    /* in characters, 1-based */
    int kline;  /* key of an object member; 0 for array elements and the root */
    int kcol;
} pos_ent_t;

struct sf_posidx {
    pos_ent_t *e; /* entries in text order */
    size_t n;     /* used */
    size_t cap;   /* allocated */
};

typedef struct {
    const char *s; /* text */
    size_t len;    /* bytes */
    size_t i;      /* cursor, bytes */
    int line;      /* of s[i] */
    int col;       /* of s[i], characters */
    char *path;    /* current path, grows */
    size_t plen;   /* used bytes of path, excluding NUL */
    size_t pcap;   /* allocated */
    bool bad;      /* out of memory or not JSON */
} scan_t;

static void adv(scan_t *sc)
{
    unsigned char ch = (unsigned char)sc->s[sc->i++];
    if (ch == '\n') {
        sc->line++;
        sc->col = 1;
    } else if ((ch & 0xC0u) != 0x80u) {
        /* count a UTF-8 sequence once, at its first byte */
        sc->col++;
    }
}

static int peek(const scan_t *sc)
{
    return sc->i < sc->len ? (unsigned char)sc->s[sc->i] : -1;
}

static void skip_ws(scan_t *sc)
{
    while (sc->i < sc->len) {
        char ch = sc->s[sc->i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        adv(sc);
    }
}

static bool path_put(scan_t *sc, const char *add, size_t n)
{
    if (sc->plen + n + 1 > sc->pcap) {
        size_t cap = (sc->plen + n + 1) * 2;
        char *p = realloc(sc->path, cap);
        if (!p) {
            sc->bad = true;
            return false;
        }
        sc->path = p;
        sc->pcap = cap;
    }
    memcpy(sc->path + sc->plen, add, n);
    sc->plen += n;
    sc->path[sc->plen] = '\0';
    return true;
}

static void record(sf_posidx_t *ix, scan_t *sc, int line, int col, int kline, int kcol)
{
    if (sc->bad)
        return;
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 256;
        pos_ent_t *e = realloc(ix->e, cap * sizeof *e);
        if (!e) {
            sc->bad = true;
            return;
        }
        ix->e = e;
        ix->cap = cap;
    }
    char *p = strdup(sc->path ? sc->path : "");
    if (!p) {
        sc->bad = true;
        return;
    }
    ix->e[ix->n++] = (pos_ent_t){p, line, col, kline, kcol};
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static long read_u4(scan_t *sc)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(peek(sc));
        if (h < 0) {
            sc->bad = true;
            return -1;
        }
        v = v * 16 + h;
        adv(sc);
    }
    return v;
}

/* Append code point cp as UTF-8 to the path. */
static void put_utf8(scan_t *sc, long cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    path_put(sc, b, n);
}

/* Scan a string at the cursor; when decode is true, append its decoded text to the
 * path (object keys), so paths match the keys jansson hands the checker. */
static void scan_string(scan_t *sc, bool decode)
{
    adv(sc); /* opening quote */
    while (!sc->bad) {
        int ch = peek(sc);
        if (ch < 0) {
            sc->bad = true;
            return;
        }
        if (ch == '"') {
            adv(sc);
            return;
        }
        if (ch != '\\') {
            if (decode) {
                char c1 = (char)ch;
                path_put(sc, &c1, 1);
            }
            adv(sc);
            continue;
        }
        adv(sc);
        int e = peek(sc);
        if (e < 0) {
            sc->bad = true;
            return;
        }
        adv(sc);
        if (e == 'u') {
            long cp = read_u4(sc);
            if (cp >= 0xD800 && cp <= 0xDBFF && peek(sc) == '\\') {
                adv(sc);
                if (peek(sc) != 'u') {
                    sc->bad = true;
                    return;
                }
                adv(sc);
                long lo = read_u4(sc);
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    sc->bad = true;
                    return;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (decode && cp >= 0)
                put_utf8(sc, cp);
            continue;
        }
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = strchr(from, e);
        if (!hit || e == 0) {
            sc->bad = true;
            return;
        }
        if (decode)
            path_put(sc, to + (hit - from), 1);
    }
}

static void scan_value(sf_posidx_t *ix, scan_t *sc, int depth, int kline, int kcol);

static void scan_object(sf_posidx_t *ix, scan_t *sc, int depth)
{
    adv(sc); /* { */
    skip_ws(sc);
    if (peek(sc) == '}') {
        adv(sc);
        return;
    }
    size_t base = sc->plen;
    while (!sc->bad) {
        skip_ws(sc);
        if (peek(sc) != '"') {
            sc->bad = true;
            return;
        }
        int kl = sc->line, kc = sc->col;
        if (base > 0)
            path_put(sc, ".", 1);
        scan_string(sc, true);
        skip_ws(sc);
        if (peek(sc) != ':') {
            sc->bad = true;
            return;
        }
        adv(sc);
        skip_ws(sc);
        scan_value(ix, sc, depth + 1, kl, kc);
        sc->plen = base;
        if (sc->path)
            sc->path[base] = '\0';
        skip_ws(sc);
        int ch = peek(sc);
        adv(sc);
        if (ch == '}')
            return;
        if (ch != ',') {
            sc->bad = true;
            return;
        }
    }
}

static void scan_array(sf_posidx_t *ix, scan_t *sc, int depth)
{
    adv(sc); /* [ */
    skip_ws(sc);
    if (peek(sc) == ']') {
        adv(sc);
        return;
    }
    size_t base = sc->plen;
    for (size_t k = 0; !sc->bad; k++) {
        char b[32];
        int n = snprintf(b, sizeof b, "[%zu]", k);
        path_put(sc, b, (size_t)n);
        skip_ws(sc);
        scan_value(ix, sc, depth + 1, 0, 0);
        sc->plen = base;
        if (sc->path)
            sc->path[base] = '\0';
        skip_ws(sc);
        int ch = peek(sc);
        adv(sc);
        if (ch == ']')
            return;
        if (ch != ',') {
            sc->bad = true;
            return;
        }
    }
}

static void scan_value(sf_posidx_t *ix, scan_t *sc, int depth, int kline, int kcol)
{
    if (sc->bad)
        return;
    if (depth > POS_MAX_DEPTH || sc->i >= sc->len) {
        sc->bad = true;
        return;
    }
    record(ix, sc, sc->line, sc->col, kline, kcol);
    int ch = peek(sc);
    if (ch == '{') {
        scan_object(ix, sc, depth);
    } else if (ch == '[') {
        scan_array(ix, sc, depth);
    } else if (ch == '"') {
        scan_string(sc, false);
    } else {
        /* number or literal: everything up to a delimiter */
        size_t start = sc->i;
        while (sc->i < sc->len && !strchr(",]} \t\r\n", sc->s[sc->i]))
            adv(sc);
        if (sc->i == start)
            sc->bad = true;
    }
}

sf_posidx_t *sf_posidx_new(const char *text, size_t len)
{
    if (!text) {
        errno = EINVAL;
        return NULL;
    }
    sf_posidx_t *ix = calloc(1, sizeof *ix);
    if (!ix) {
        errno = ENOMEM;
        return NULL;
    }
    scan_t sc = {.s = text, .len = len, .line = 1, .col = 1};
    path_put(&sc, "", 0);
    skip_ws(&sc);
    /* a UTF-8 byte order mark is not JSON; jansson rejects it, so do we */
    scan_value(ix, &sc, 0, 0, 0);
    bool bad = sc.bad;
    free(sc.path);
    if (bad) {
        sf_posidx_destroy(&ix);
        errno = EINVAL;
        return NULL;
    }
    return ix;
}

void sf_posidx_destroy(sf_posidx_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_posidx_t *ix = *self_p;
    for (size_t k = 0; k < ix->n; k++)
        free(ix->e[k].path);
    free(ix->e);
    free(ix);
    *self_p = NULL;
}

static const pos_ent_t *lookup(const sf_posidx_t *ix, const char *path, size_t n)
{
    for (size_t k = 0; k < ix->n; k++)
        if (strlen(ix->e[k].path) == n && memcmp(ix->e[k].path, path, n) == 0)
            return &ix->e[k];
    return NULL;
}

int sf_posidx_find(const sf_posidx_t *self, const char *path, bool key, int *line, int *col)
{
    if (!self || !path || !line || !col)
        return -1;
    size_t n = strlen(path);
    const pos_ent_t *hit = lookup(self, path, n);
    if (hit) {
        bool use_key = key && hit->kline > 0;
        *line = use_key ? hit->kline : hit->line;
        *col = use_key ? hit->kcol : hit->col;
        return 0;
    }
    /* walk up: drop the last ".name" or "[k]" and try the parent */
    while (n > 0) {
        size_t k = n;
        while (k > 0 && path[k - 1] != '.' && path[k - 1] != '[')
            k--;
        if (k == 0) {
            n = 0;
        } else {
            n = k - 1; /* drop the separator too */
        }
        hit = lookup(self, path, n);
        if (hit) {
            *line = hit->line;
            *col = hit->col;
            return 1;
        }
    }
    return -1;
}

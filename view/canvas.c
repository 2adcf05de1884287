/* view/canvas.c — batched drawing over an SDL_Renderer, windowed or offscreen. */
#include "canvas.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <SDL2/SDL_image.h>
#include <SDL2/SDL_ttf.h>

#define TEXT_CACHE   512 /* direct-mapped slots of rendered strings */
#define TEXT_KEY_LEN 96  /* longer strings are rendered every time, not cached */

/* CJK fonts Debian installs (fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei,
 * fonts-arphic-uming, fonts-droid-fallback), first found wins. */
static const char *const cjk_candidates[] = {
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    NULL,
};

static const int text_pt[SF_TEXT_N] = {11, 13, 17};

typedef struct {
    SDL_Texture *tex;       /* rendered string, NULL = empty slot */
    int w, h;               /* texture size, pixels */
    uint8_t size;           /* sf_text_size_t */
    uint32_t rgba;          /* colour packed r<<24|g<<16|b<<8|a */
    char key[TEXT_KEY_LEN]; /* the string */
} text_slot_t;

struct sf_canvas {
    SDL_Window *win;            /* NULL offscreen */
    SDL_Surface *surf;          /* offscreen target, NULL on a window */
    SDL_Renderer *ren;          /* owned */
    char backend[32];           /* renderer name */
    bool video_inited;          /* we called SDL_InitSubSystem(VIDEO) */
    bool ttf_inited;            /* we called TTF_Init */
    TTF_Font *latin[SF_TEXT_N]; /* DejaVu Sans per size */
    TTF_Font *cjk[SF_TEXT_N];   /* CJK font per size, NULL when none installed */
    const char *cjk_path;       /* which CJK font, or NULL */
    SDL_Vertex *vtx;            /* pending triangles, 3 vertices each */
    size_t n_vtx, cap_vtx;      /* used and allocated vertices */
    text_slot_t *cache;         /* TEXT_CACHE slots */
};

const char *sf_canvas_last_error(void)
{
    return SDL_GetError();
}

static bool file_exists(const char *path)
{
    SDL_RWops *rw = SDL_RWFromFile(path, "rb");
    if (!rw)
        return false;
    SDL_RWclose(rw);
    return true;
}

static int open_fonts(sf_canvas_t *c)
{
    if (!file_exists(SF_FONT_DEJAVU)) {
        SDL_SetError("font %s not found (Debian package fonts-dejavu-core)", SF_FONT_DEJAVU);
        errno = ENOENT;
        return -1;
    }
    for (int i = 0; i < SF_TEXT_N; i++) {
        c->latin[i] = TTF_OpenFont(SF_FONT_DEJAVU, text_pt[i]);
        if (!c->latin[i]) {
            errno = EIO;
            return -1;
        }
    }
    for (const char *const *p = cjk_candidates; *p; p++) {
        if (!file_exists(*p))
            continue;
        bool ok = true;
        for (int i = 0; i < SF_TEXT_N && ok; i++) {
            c->cjk[i] = TTF_OpenFont(*p, text_pt[i]);
            ok = c->cjk[i] != NULL;
        }
        if (ok) {
            c->cjk_path = *p;
            break;
        }
        for (int i = 0; i < SF_TEXT_N; i++)
            if (c->cjk[i]) {
                TTF_CloseFont(c->cjk[i]);
                c->cjk[i] = NULL;
            }
    }
    return 0;
}

/* Common part of both constructors once the renderer exists. */
static int finish_init(sf_canvas_t *c)
{
    SDL_RendererInfo info;
    if (SDL_GetRendererInfo(c->ren, &info) == 0)
        SDL_strlcpy(c->backend, info.name, sizeof c->backend);
    SDL_SetRenderDrawBlendMode(c->ren, SDL_BLENDMODE_BLEND);
    /* TTF_Init is reference-counted (SDL2_ttf >= 2.0.18): each canvas holds one. */
    if (TTF_Init() != 0) {
        errno = EIO;
        return -1;
    }
    c->ttf_inited = true;
    if (open_fonts(c) != 0)
        return -1;
    c->cache = calloc(TEXT_CACHE, sizeof *c->cache);
    c->cap_vtx = 3 * 4096;
    c->vtx = malloc(c->cap_vtx * sizeof *c->vtx);
    if (!c->cache || !c->vtx) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

sf_canvas_t *sf_canvas_new_offscreen(int w, int h)
{
    if (w <= 0 || h <= 0 || w > 16384 || h > 16384) {
        errno = EINVAL;
        return NULL;
    }
    sf_canvas_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->surf = SDL_CreateRGBSurfaceWithFormat(0, w, h, 32, SDL_PIXELFORMAT_ARGB8888);
    if (!c->surf) {
        errno = EIO;
        goto fail;
    }
    c->ren = SDL_CreateSoftwareRenderer(c->surf);
    if (!c->ren) {
        errno = EIO;
        goto fail;
    }
    if (finish_init(c) != 0)
        goto fail;
    return c;
fail:;
    int saved = errno;
    sf_canvas_destroy(&c);
    errno = saved;
    return NULL;
}

sf_canvas_t *sf_canvas_new_window(const char *title, int w, int h, bool prefer_software)
{
    if (w <= 0 || h <= 0 || w > 16384 || h > 16384) {
        errno = EINVAL;
        return NULL;
    }
    sf_canvas_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
        errno = EIO;
        goto fail;
    }
    c->video_inited = true;
    c->win = SDL_CreateWindow(title ? title : "sigflow", SDL_WINDOWPOS_UNDEFINED,
                              SDL_WINDOWPOS_UNDEFINED, w, h, SDL_WINDOW_RESIZABLE);
    if (!c->win) {
        errno = EIO;
        goto fail;
    }
    if (!prefer_software)
        c->ren = SDL_CreateRenderer(c->win, -1, SDL_RENDERER_ACCELERATED);
    if (!c->ren)
        c->ren = SDL_CreateRenderer(c->win, -1, SDL_RENDERER_SOFTWARE);
    if (!c->ren) {
        errno = EIO;
        goto fail;
    }
    if (finish_init(c) != 0)
        goto fail;
    return c;
fail:;
    int saved = errno;
    sf_canvas_destroy(&c);
    errno = saved;
    return NULL;
}

void sf_canvas_destroy(sf_canvas_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_canvas_t *c = *self_p;
    if (c->cache) {
        for (int i = 0; i < TEXT_CACHE; i++)
            if (c->cache[i].tex)
                SDL_DestroyTexture(c->cache[i].tex);
        free(c->cache);
    }
    for (int i = 0; i < SF_TEXT_N; i++) {
        if (c->latin[i])
            TTF_CloseFont(c->latin[i]);
        if (c->cjk[i])
            TTF_CloseFont(c->cjk[i]);
    }
    if (c->ttf_inited)
        TTF_Quit();
    free(c->vtx);
    if (c->ren)
        SDL_DestroyRenderer(c->ren);
    if (c->surf)
        SDL_FreeSurface(c->surf);
    if (c->win)
        SDL_DestroyWindow(c->win);
    if (c->video_inited)
        SDL_QuitSubSystem(SDL_INIT_VIDEO);
    free(c);
    *self_p = NULL;
}

SDL_Renderer *sf_canvas_renderer(sf_canvas_t *c)
{
    return c ? c->ren : NULL;
}

SDL_Window *sf_canvas_window(sf_canvas_t *c)
{
    return c ? c->win : NULL;
}

const char *sf_canvas_backend(const sf_canvas_t *c)
{
    return c ? c->backend : "";
}

void sf_canvas_size(const sf_canvas_t *c, int *w, int *h)
{
    int ww = 0, hh = 0;
    if (c)
        SDL_GetRendererOutputSize(c->ren, &ww, &hh);
    if (w)
        *w = ww;
    if (h)
        *h = hh;
}

const char *sf_canvas_cjk_font(const sf_canvas_t *c)
{
    return c ? c->cjk_path : NULL;
}

bool sf_text_needs_cjk(const char *s)
{
    /* A UTF-8 lead byte of 0xE2 0xBA.. or above starts U+2E80 (CJK radicals) and up;
     * checking for lead bytes >= 0xE3 (U+3000..) plus 0xE2 0xBA..0xBF covers it. */
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p >= 0xE3 && *p < 0xF8)
            return true;
        if (*p == 0xE2 && p[1] >= 0xBA && p[1] <= 0xBF)
            return true;
    }
    return false;
}

void sf_text_strip_cjk(const char *in, char *out, size_t len)
{
    size_t n = 0;
    if (!out || !len)
        return;
    const unsigned char *p = (const unsigned char *)(in ? in : "");
    while (*p) {
        size_t clen = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        bool cjk = *p >= 0xE3 || (*p == 0xE2 && p[1] >= 0xBA && p[1] <= 0xBF);
        for (size_t k = 1; k < clen; k++)
            if (!p[k]) /* truncated sequence: stop */
                clen = k;
        if (!cjk && !(clen == 1 && *p == ' ' && (n == 0 || out[n - 1] == ' ')) && n + clen < len) {
            memcpy(out + n, p, clen);
            n += clen;
        }
        p += clen;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

/* ---- batch --------------------------------------------------------------------- */

static bool reserve(sf_canvas_t *c, size_t more)
{
    if (c->n_vtx + more <= c->cap_vtx)
        return true;
    size_t cap = c->cap_vtx ? c->cap_vtx : 3 * 1024;
    while (cap < c->n_vtx + more)
        cap *= 2;
    SDL_Vertex *v = realloc(c->vtx, cap * sizeof *v);
    if (!v)
        return false;
    c->vtx = v;
    c->cap_vtx = cap;
    return true;
}

static inline void put(sf_canvas_t *c, float x, float y, SDL_Color col)
{
    SDL_Vertex *v = &c->vtx[c->n_vtx++];
    v->position.x = x;
    v->position.y = y;
    v->color = col;
    v->tex_coord.x = 0;
    v->tex_coord.y = 0;
}

void sf_canvas_flush(sf_canvas_t *c)
{
    if (!c || c->n_vtx == 0)
        return;
    /* SDL_RenderGeometry takes an int vertex count; flush in chunks far below INT_MAX. */
    size_t done = 0;
    while (done < c->n_vtx) {
        size_t n = c->n_vtx - done;
        if (n > 3u * 1000000u)
            n = 3u * 1000000u;
        SDL_RenderGeometry(c->ren, NULL, c->vtx + done, (int)n, NULL, 0);
        done += n;
    }
    c->n_vtx = 0;
}

void sf_canvas_clear(sf_canvas_t *c, SDL_Color col)
{
    if (!c)
        return;
    c->n_vtx = 0;
    SDL_SetRenderDrawColor(c->ren, col.r, col.g, col.b, col.a);
    SDL_RenderClear(c->ren);
}

void sf_canvas_tri(sf_canvas_t *c, SDL_FPoint a, SDL_FPoint b, SDL_FPoint d, SDL_Color col)
{
    if (!c || !reserve(c, 3))
        return;
    put(c, a.x, a.y, col);
    put(c, b.x, b.y, col);
    put(c, d.x, d.y, col);
}

void sf_canvas_quad(sf_canvas_t *c, const SDL_FPoint p[4], SDL_Color col)
{
    if (!c || !reserve(c, 6))
        return;
    put(c, p[0].x, p[0].y, col);
    put(c, p[1].x, p[1].y, col);
    put(c, p[2].x, p[2].y, col);
    put(c, p[0].x, p[0].y, col);
    put(c, p[2].x, p[2].y, col);
    put(c, p[3].x, p[3].y, col);
}

void sf_canvas_rect(sf_canvas_t *c, float x, float y, float w, float h, SDL_Color col)
{
    if (w <= 0 || h <= 0)
        return;
    SDL_FPoint p[4] = {{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}};
    sf_canvas_quad(c, p, col);
}

void sf_canvas_rect_outline(sf_canvas_t *c, float x, float y, float w, float h, float t,
                            SDL_Color col)
{
    sf_canvas_rect(c, x, y, w, t, col);
    sf_canvas_rect(c, x, y + h - t, w, t, col);
    sf_canvas_rect(c, x, y + t, t, h - 2 * t, col);
    sf_canvas_rect(c, x + w - t, y + t, t, h - 2 * t, col);
}

void sf_canvas_line(sf_canvas_t *c, float x0, float y0, float x1, float y1, float w, SDL_Color col)
{
    float dx = x1 - x0, dy = y1 - y0;
    float len = sqrtf(dx * dx + dy * dy);
    if (len < 1e-6f)
        return;
    if (w < 1.0f)
        w = 1.0f;
    /* Normal scaled to half the width. */
    float nx = -dy / len * w * 0.5f, ny = dx / len * w * 0.5f;
    SDL_FPoint p[4] = {
        {x0 + nx, y0 + ny}, {x1 + nx, y1 + ny}, {x1 - nx, y1 - ny}, {x0 - nx, y0 - ny}};
    sf_canvas_quad(c, p, col);
}

void sf_canvas_disc(sf_canvas_t *c, float cx, float cy, float r, SDL_Color col)
{
    enum { SEG = 16 };
    if (!c || r <= 0 || !reserve(c, 3 * SEG))
        return;
    const float step = 6.2831853f / SEG;
    float px = cx + r, py = cy;
    for (int i = 1; i <= SEG; i++) {
        float a = step * (float)i;
        float qx = cx + r * cosf(a), qy = cy + r * sinf(a);
        put(c, cx, cy, col);
        put(c, px, py, col);
        put(c, qx, qy, col);
        px = qx;
        py = qy;
    }
}

void sf_canvas_rects(sf_canvas_t *c, const SDL_FRect *r, int n, SDL_Color col)
{
    if (!c || !r || n <= 0)
        return;
    sf_canvas_flush(c);
    /* opaque: no blending, so the software renderer fills rows directly */
    SDL_SetRenderDrawBlendMode(c->ren, SDL_BLENDMODE_NONE);
    SDL_SetRenderDrawColor(c->ren, col.r, col.g, col.b, 255);
    SDL_RenderFillRectsF(c->ren, r, n);
    SDL_SetRenderDrawBlendMode(c->ren, SDL_BLENDMODE_BLEND);
}

/* ---- text ---------------------------------------------------------------------- */

static uint32_t pack(SDL_Color col)
{
    return (uint32_t)col.r << 24 | (uint32_t)col.g << 16 | (uint32_t)col.b << 8 | col.a;
}

static uint32_t hash_text(const char *s, sf_text_size_t size, uint32_t rgba)
{
    uint32_t h = 2166136261u ^ (uint32_t)size ^ (rgba * 16777619u);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static TTF_Font *font_for(sf_canvas_t *c, sf_text_size_t size, const char *s)
{
    if (c->cjk[size] && sf_text_needs_cjk(s))
        return c->cjk[size];
    return c->latin[size];
}

/* Texture of the string, from the cache or freshly rendered. *owned tells the caller to
 * destroy it after use (strings too long for the cache). */
static SDL_Texture *text_texture(sf_canvas_t *c, sf_text_size_t size, SDL_Color col, const char *s,
                                 int *w, int *h, bool *owned)
{
    uint32_t rgba = pack(col);
    size_t len = strlen(s);
    text_slot_t *slot = NULL;
    *owned = false;
    if (len < TEXT_KEY_LEN) {
        slot = &c->cache[hash_text(s, size, rgba) % TEXT_CACHE];
        if (slot->tex && slot->size == (uint8_t)size && slot->rgba == rgba &&
            strcmp(slot->key, s) == 0) {
            *w = slot->w;
            *h = slot->h;
            return slot->tex;
        }
    }
    SDL_Surface *surf = TTF_RenderUTF8_Blended(font_for(c, size, s), s, col);
    if (!surf)
        return NULL;
    SDL_Texture *tex = SDL_CreateTextureFromSurface(c->ren, surf);
    int tw = surf->w, th = surf->h;
    SDL_FreeSurface(surf);
    if (!tex)
        return NULL;
    *w = tw;
    *h = th;
    if (!slot) {
        *owned = true;
        return tex;
    }
    if (slot->tex)
        SDL_DestroyTexture(slot->tex);
    slot->tex = tex;
    slot->w = tw;
    slot->h = th;
    slot->size = (uint8_t)size;
    slot->rgba = rgba;
    memcpy(slot->key, s, len + 1);
    return tex;
}

int sf_canvas_text(sf_canvas_t *c, float x, float y, sf_text_size_t size, SDL_Color col,
                   sf_align_t align, const char *utf8)
{
    if (!c || (unsigned)size >= SF_TEXT_N) {
        errno = EINVAL;
        return -1;
    }
    if (!utf8 || !*utf8)
        return 0;
    sf_canvas_flush(c); /* keep drawing order: shapes queued before the text go first */
    char stripped[256];
    if (!c->cjk[size] && sf_text_needs_cjk(utf8)) {
        /* no CJK font installed: leave the characters out rather than draw boxes */
        sf_text_strip_cjk(utf8, stripped, sizeof stripped);
        if (!stripped[0])
            return 0;
        utf8 = stripped;
    }
    int w, h;
    bool owned;
    SDL_Texture *tex = text_texture(c, size, col, utf8, &w, &h, &owned);
    if (!tex) {
        errno = EIO;
        return -1;
    }
    float x0 = x;
    if (align == SF_ALIGN_CENTER)
        x0 = x - (float)w / 2;
    else if (align == SF_ALIGN_RIGHT)
        x0 = x - (float)w;
    SDL_FRect dst = {floorf(x0), floorf(y), (float)w, (float)h};
    SDL_RenderCopyF(c->ren, tex, NULL, &dst);
    if (owned)
        SDL_DestroyTexture(tex);
    return w;
}

int sf_canvas_text_size(sf_canvas_t *c, sf_text_size_t size, const char *utf8, int *w, int *h)
{
    if (!c || (unsigned)size >= SF_TEXT_N || !utf8) {
        errno = EINVAL;
        return -1;
    }
    int ww = 0, hh = 0;
    if (*utf8 && TTF_SizeUTF8(font_for(c, size, utf8), utf8, &ww, &hh) != 0) {
        errno = EIO;
        return -1;
    }
    if (w)
        *w = ww;
    if (h)
        *h = hh;
    return 0;
}

/* ---- output -------------------------------------------------------------------- */

void sf_canvas_present(sf_canvas_t *c)
{
    if (!c)
        return;
    sf_canvas_flush(c);
    SDL_RenderPresent(c->ren);
}

int sf_canvas_read_pixel(sf_canvas_t *c, int x, int y, SDL_Color *out)
{
    int w, h;
    sf_canvas_size(c, &w, &h);
    if (!c || !out || x < 0 || y < 0 || x >= w || y >= h) {
        errno = EINVAL;
        return -1;
    }
    sf_canvas_flush(c);
    uint32_t px = 0;
    SDL_Rect r = {x, y, 1, 1};
    if (SDL_RenderReadPixels(c->ren, &r, SDL_PIXELFORMAT_ARGB8888, &px, 4) != 0) {
        errno = EIO;
        return -1;
    }
    out->a = (uint8_t)(px >> 24);
    out->r = (uint8_t)(px >> 16);
    out->g = (uint8_t)(px >> 8);
    out->b = (uint8_t)px;
    return 0;
}

int sf_canvas_save_png(sf_canvas_t *c, const char *path)
{
    if (!c || !path || !*path) {
        errno = EINVAL;
        return -1;
    }
    sf_canvas_flush(c);
    int w, h;
    sf_canvas_size(c, &w, &h);
    SDL_Surface *s = SDL_CreateRGBSurfaceWithFormat(0, w, h, 32, SDL_PIXELFORMAT_ARGB8888);
    if (!s) {
        errno = EIO;
        return -1;
    }
    int rc = SDL_RenderReadPixels(c->ren, NULL, SDL_PIXELFORMAT_ARGB8888, s->pixels, s->pitch);
    if (rc == 0)
        rc = IMG_SavePNG(s, path);
    SDL_FreeSurface(s);
    if (rc != 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}

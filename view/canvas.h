/* view/canvas.h — a drawing surface over an SDL_Renderer, on a window or offscreen.
 *
 * Every picture sigflow draws (the network, the intersection panel, the plots) goes
 * through a canvas, so the live window and the PNG files share one drawing code path:
 * a window canvas wraps a hardware (or software) renderer of an SDL window; an
 * offscreen canvas wraps SDL_CreateSoftwareRenderer on an SDL_Surface and needs no
 * display (SDL_VIDEODRIVER=dummy is enough).
 *
 * Shapes are batched: rectangles, quads, triangles, thick lines and discs are appended to
 * one vertex array with per-vertex colours and sent with a single SDL_RenderGeometry call
 * when the batch is flushed (before text, before reading pixels, on present). Text is
 * drawn with SDL2_ttf: DejaVu Sans for Latin text, a CJK font for strings holding CJK
 * characters when one is installed (sf_canvas_cjk_font tells which; without one such
 * the CJK characters are left out rather than drawn as boxes, and callers that have an
 * id to show instead do so). Rendered strings are cached as textures.
 */
#ifndef SIGFLOW_CANVAS_H
#define SIGFLOW_CANVAS_H

#include <stdbool.h>
#include <stdint.h>

#include <SDL2/SDL.h>

typedef struct sf_canvas sf_canvas_t;

/* Text sizes (points at 96 dpi). */
typedef enum {
    SF_TEXT_SMALL = 0,
    SF_TEXT_NORMAL = 1,
    SF_TEXT_LARGE = 2,
    SF_TEXT_N = 3
} sf_text_size_t;

/* Horizontal anchoring of text at x. */
typedef enum { SF_ALIGN_LEFT = 0, SF_ALIGN_CENTER = 1, SF_ALIGN_RIGHT = 2 } sf_align_t;

/* The Latin font every canvas needs (Debian package fonts-dejavu-core). */
#define SF_FONT_DEJAVU "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

/* New offscreen canvas of w x h pixels (software renderer on a 32-bit surface).
 * Returns NULL with errno set (EINVAL bad size, ENOENT no DejaVu font, EIO SDL failure;
 * sf_canvas_last_error has SDL's text). Caller destroys. */
sf_canvas_t *sf_canvas_new_offscreen(int w, int h);

/* New canvas on a resizable window titled title: hardware-accelerated renderer when the
 * video driver offers one, else software (or always software when prefer_software).
 * Returns NULL with errno set (see sf_canvas_new_offscreen). Caller destroys. */
sf_canvas_t *sf_canvas_new_window(const char *title, int w, int h, bool prefer_software);

/* Free the canvas, its window or surface and its fonts; takes NULL, sets *self_p NULL. */
void sf_canvas_destroy(sf_canvas_t **self_p);

/* Text of the last SDL/TTF failure in a constructor (thread-local to SDL). */
const char *sf_canvas_last_error(void);

/* The renderer (owned by the canvas), its window (NULL offscreen). */
SDL_Renderer *sf_canvas_renderer(sf_canvas_t *c);
SDL_Window *sf_canvas_window(sf_canvas_t *c);

/* Renderer backend name: "software", "opengl", ... */
const char *sf_canvas_backend(const sf_canvas_t *c);

/* Current output size in pixels (follows window resizes). */
void sf_canvas_size(const sf_canvas_t *c, int *w, int *h);

/* Path of the CJK font in use, or NULL when none is installed. */
const char *sf_canvas_cjk_font(const sf_canvas_t *c);

/* True when s holds a character only a CJK font can draw (U+2E80 and above). */
bool sf_text_needs_cjk(const char *s);

/* Copy in to out (len bytes, NUL-terminated) without the characters sf_text_needs_cjk
 * looks for, collapsing the spaces left behind ("仙桃大道 corridor" -> "corridor"). Text
 * drawn on a canvas without a CJK font goes through this. */
void sf_text_strip_cjk(const char *in, char *out, size_t len);

/* Clear the whole canvas to col (drops the pending batch). */
void sf_canvas_clear(sf_canvas_t *c, SDL_Color col);

/* Batched shapes, in pixels (floats: sub-pixel positions are fine). */
void sf_canvas_rect(sf_canvas_t *c, float x, float y, float w, float h, SDL_Color col);
void sf_canvas_rect_outline(sf_canvas_t *c, float x, float y, float w, float h, float t,
                            SDL_Color col);
void sf_canvas_tri(sf_canvas_t *c, SDL_FPoint a, SDL_FPoint b, SDL_FPoint d, SDL_Color col);
/* Quad with corners in order around its outline. */
void sf_canvas_quad(sf_canvas_t *c, const SDL_FPoint p[4], SDL_Color col);
/* Line of width w pixels (at least 1). */
void sf_canvas_line(sf_canvas_t *c, float x0, float y0, float x1, float y1, float w, SDL_Color col);
void sf_canvas_disc(sf_canvas_t *c, float cx, float cy, float r, SDL_Color col);

/* n opaque axis-aligned rectangles of one colour in one SDL_RenderFillRectsF call (the
 * fast path for many small shapes). Flushes the pending batch first, so they land on top
 * of what was queued before and under what comes after. */
void sf_canvas_rects(sf_canvas_t *c, const SDL_FRect *r, int n, SDL_Color col);

/* Draw UTF-8 text with its top at y, anchored at x by align. Returns the width drawn in
 * pixels, or -1 (errno EIO) when the font cannot render it. Empty or NULL text: 0. */
int sf_canvas_text(sf_canvas_t *c, float x, float y, sf_text_size_t size, SDL_Color col,
                   sf_align_t align, const char *utf8);

/* Size text would take, without drawing it. Returns 0 or -1. */
int sf_canvas_text_size(sf_canvas_t *c, sf_text_size_t size, const char *utf8, int *w, int *h);

/* Send the pending batch to the renderer. */
void sf_canvas_flush(sf_canvas_t *c);

/* Flush and show the frame (a window) or finish it (offscreen). */
void sf_canvas_present(sf_canvas_t *c);

/* Colour of pixel (x, y) of what has been drawn (flushes first). Returns 0 or -1 (EINVAL
 * outside the canvas, EIO renderer failure). */
int sf_canvas_read_pixel(sf_canvas_t *c, int x, int y, SDL_Color *out);

/* Write what has been drawn as a PNG file. Returns 0 or -1 with errno (EIO: SDL_image's
 * reason in sf_canvas_last_error). */
int sf_canvas_save_png(sf_canvas_t *c, const char *path);

#endif

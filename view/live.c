/* view/live.c — the live window: bus in, pictures out, commands back (live.h). */
#include "live.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bus.h"
#include "bus.pb-c.h"
#include "canvas.h"
#include "netview.h"
#include "palette.h"
#include "panel.h"
#include "runrec.h"
#include "viewmodel.h"

#define FRAME_MS       16    /* target frame period (about 60 frames/s) */
#define DRAIN_MAX      20000 /* messages taken per wake-up before drawing again */
#define DRAG_THRESHOLD 4     /* pixels a press must move to be a drag, not a click */

static void seterr(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

typedef struct {
    const sf_scenario_t *sc; /* not owned */
    const sf_live_opts_t *o; /* not owned */
    void *zctx, *sub, *pub;  /* ZeroMQ context and sockets (pub may be NULL) */
    bool own_ctx;            /* zctx is ours to terminate */
    sf_canvas_t *c;          /* window canvas */
    sf_netview_t *nv;        /* network view */
    sf_viewmodel_t *vm;      /* what the bus told us */
    sf_runrec_t *rec;        /* optional recorder */
    sf_view_state_t st;      /* frame state (view fields owned here) */
    bool help;               /* help overlay shown */
    bool running;
    double speed;                 /* last commanded real-time factor */
    bool paused;                  /* last commanded pause state */
    bool priority_on;             /* last commanded priority state (toggle) */
    bool pressing, dragging;      /* left button state */
    int press_x, press_y;         /* where it went down */
    double rate_wall0, rate_sim0; /* reference for the measured sim speed */
    double rate;                  /* sim seconds per wall second, measured */
    char msg[256];                /* status text */
    char note[96];                /* last command sent, shown briefly */
    double ended_at;              /* wall time the end of the run was first seen, 0 before */
    sf_live_stats_t stats;
} live_t;

static double wall_s(void)
{
    return (double)SDL_GetTicks64() / 1000.0;
}

static void send_cmd(live_t *L, Sfbus__Command cmd, double speed, uint32_t ix, uint32_t plan,
                     const char *what)
{
    if (!L->pub) {
        snprintf(L->note, sizeof L->note, "%s: no --pub endpoint, command not sent", what);
        return;
    }
    Sfbus__ViewCommand m = SFBUS__VIEW_COMMAND__INIT;
    m.cmd = cmd;
    m.speed_factor = speed;
    m.ix = ix;
    m.plan = plan;
    if (sf_bus_send(L->pub, &m.base) == 0) {
        L->stats.commands++;
        snprintf(L->note, sizeof L->note, "sent: %s", what);
    } else {
        snprintf(L->note, sizeof L->note, "%s: not sent (%s)", what, strerror(errno));
    }
}

/* The factor after one press of + (up) or -: powers of two from SPEED_MIN to SPEED_TOP,
 * and beyond SPEED_TOP "as fast as possible" (0, lockstep pacing). From as fast as
 * possible, - goes to the power of two at or below the sim speed measured in this window
 * (so the first step down really is slower). The current factor is the one the clock
 * announced in its latest Step (else the last one sent). Returns 0, or -1 with a note
 * when there is no change to make. */
#define SPEED_MIN 0.125
#define SPEED_TOP 512.0 /* the bus refuses factors above 1000 (bus_codec.c) */
static int next_speed(live_t *L, bool up, double *next)
{
    double cur = sf_viewmodel_speed(L->vm);
    if (cur < 0)
        cur = L->speed;
    if (up) {
        if (cur == 0) {
            snprintf(L->note, sizeof L->note, "already as fast as possible");
            return -1;
        }
        *next = cur * 2 > SPEED_TOP ? 0 : fmax(cur * 2, SPEED_MIN);
        return 0;
    }
    if (cur == 0) {
        double p = SPEED_TOP;
        while (p > SPEED_MIN && (L->rate <= 0 || p > L->rate))
            p /= 2;
        *next = L->rate > 0 ? p : SPEED_TOP;
        return 0;
    }
    if (cur <= SPEED_MIN) {
        snprintf(L->note, sizeof L->note, "already at the slowest, x%g", SPEED_MIN);
        return -1;
    }
    *next = fmax(cur / 2, SPEED_MIN);
    return 0;
}

static void on_key(live_t *L, SDL_Keycode key)
{
    int w, h;
    sf_canvas_size(L->c, &w, &h);
    int sel = L->st.selected_ix;
    char what[64];
    switch (key) {
    case SDLK_q:
        L->running = false;
        break;
    case SDLK_ESCAPE:
        if (L->st.selected_ix < 0 && sf_viewmodel_ended(L->vm))
            L->running = false; /* the run is over: Esc closes like q */
        L->st.selected_ix = -1;
        break;
    case SDLK_h:
    case SDLK_F1:
        L->help = !L->help;
        break;
    case SDLK_SPACE:
        L->paused = !L->paused;
        send_cmd(L, L->paused ? SFBUS__COMMAND__CMD_PAUSE : SFBUS__COMMAND__CMD_RESUME, 0, 0, 0,
                 L->paused ? "pause" : "resume");
        break;
    case SDLK_n:
    case SDLK_PERIOD:
        send_cmd(L, SFBUS__COMMAND__CMD_STEP, 0, 0, 0, "single step");
        break;
    case SDLK_PLUS:
    case SDLK_EQUALS:
    case SDLK_KP_PLUS:
    case SDLK_MINUS:
    case SDLK_KP_MINUS: {
        bool up = key == SDLK_PLUS || key == SDLK_EQUALS || key == SDLK_KP_PLUS;
        double next;
        if (next_speed(L, up, &next) != 0)
            break;
        L->speed = next;
        if (next > 0)
            snprintf(what, sizeof what, "speed x%g", next);
        else
            snprintf(what, sizeof what, "speed: as fast as possible");
        send_cmd(L, SFBUS__COMMAND__CMD_SPEED, next, 0, 0, what);
        break;
    }
    case SDLK_p:
        L->priority_on = !L->priority_on;
        send_cmd(L, SFBUS__COMMAND__CMD_TOGGLE_PRIORITY, 0, 0, 0, "toggle priority");
        break;
    case SDLK_r:
        if (sel < 0) {
            snprintf(L->note, sizeof L->note, "reset fault: click an intersection first");
            break;
        }
        snprintf(what, sizeof what, "fault reset at %s", L->sc->intersections[sel].id);
        send_cmd(L, SFBUS__COMMAND__CMD_FAULT_RESET, 0, (uint32_t)sel, 0, what);
        break;
    case SDLK_LEFT:
        sf_netview_pan(L->nv, 60, 0);
        break;
    case SDLK_RIGHT:
        sf_netview_pan(L->nv, -60, 0);
        break;
    case SDLK_UP:
        sf_netview_pan(L->nv, 0, 60);
        break;
    case SDLK_DOWN:
        sf_netview_pan(L->nv, 0, -60);
        break;
    case SDLK_z:
    case SDLK_x:
        sf_netview_zoom(L->nv, key == SDLK_z ? 1.25 : 0.8, (float)w / 2,
                        (float)(h - SF_STATUS_BAR_PX) / 2);
        break;
    case SDLK_f:
    case SDLK_HOME:
        sf_netview_fit(L->nv, w, h);
        break;
    default:
        if (key >= SDLK_1 && key <= SDLK_9) {
            uint32_t plan = (uint32_t)(key - SDLK_0);
            if (sel < 0) {
                snprintf(L->note, sizeof L->note, "select plan: click an intersection first");
                break;
            }
            const sf_intersection_t *ix = &L->sc->intersections[sel];
            bool exists = false;
            for (uint8_t p = 0; p < ix->n_plans; p++)
                exists |= ix->plans[p].id == plan;
            if (!exists) {
                snprintf(L->note, sizeof L->note, "%s has no plan %u", ix->id, (unsigned)plan);
                break;
            }
            snprintf(what, sizeof what, "plan %u at %s", (unsigned)plan, ix->id);
            send_cmd(L, SFBUS__COMMAND__CMD_SELECT_PLAN, 0, (uint32_t)sel, plan, what);
        }
    }
}

static void on_event(live_t *L, const SDL_Event *e)
{
    switch (e->type) {
    case SDL_QUIT:
        L->running = false;
        break;
    case SDL_KEYDOWN:
        on_key(L, e->key.keysym.sym);
        break;
    case SDL_MOUSEBUTTONDOWN:
        if (e->button.button == SDL_BUTTON_LEFT) {
            L->pressing = true;
            L->dragging = false;
            L->press_x = e->button.x;
            L->press_y = e->button.y;
        }
        break;
    case SDL_MOUSEMOTION:
        if (L->pressing) {
            if (abs(e->motion.x - L->press_x) + abs(e->motion.y - L->press_y) > DRAG_THRESHOLD)
                L->dragging = true;
            if (L->dragging)
                sf_netview_pan(L->nv, (float)e->motion.xrel, (float)e->motion.yrel);
        }
        break;
    case SDL_MOUSEBUTTONUP:
        if (e->button.button == SDL_BUTTON_LEFT && L->pressing) {
            if (!L->dragging)
                L->st.selected_ix = sf_netview_hit(L->nv, (float)e->button.x, (float)e->button.y);
            L->pressing = L->dragging = false;
        }
        break;
    case SDL_MOUSEWHEEL: {
        int mx, my;
        SDL_GetMouseState(&mx, &my);
        double f = e->wheel.y > 0 ? 1.2 : e->wheel.y < 0 ? 1 / 1.2 : 1;
        sf_netview_zoom(L->nv, f, (float)mx, (float)my);
        break;
    }
    default:
        break;
    }
}

/* Push the scripted key presses as SDL events, so they take the same path as a user's. */
static int push_keys(live_t *L, char *err, size_t err_len)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", L->o->keys);
    char *save = NULL;
    for (char *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        SDL_Keycode key = strcmp(name, "+") == 0 ? SDLK_PLUS : SDL_GetKeyFromName(name);
        if (key == SDLK_UNKNOWN) {
            seterr(err, err_len, "--keys: unknown key '%s'", name);
            errno = EINVAL;
            return -1;
        }
        SDL_Event e;
        memset(&e, 0, sizeof e);
        e.type = SDL_KEYDOWN;
        e.key.state = SDL_PRESSED;
        e.key.keysym.sym = key;
        if (SDL_PushEvent(&e) < 0) {
            seterr(err, err_len, "--keys: %s", SDL_GetError());
            errno = EIO;
            return -1;
        }
        L->stats.keys_pressed++;
    }
    return 0;
}

static void draw_help(sf_canvas_t *c)
{
    static const char *const lines[] = {
        "keys",
        "space        pause / resume the simulation",
        "n  or  .     single step (while paused)",
        "+  /  -      faster / slower (x2, /2; beyond x512: as fast as possible)",
        "p            toggle transit priority",
        "1 .. 9       switch the selected intersection to that plan",
        "r            reset the selected intersection's fault",
        "click        select an intersection (panel); Esc closes it",
        "Esc  or  q   after the run: close the window",
        "drag, arrows pan;  wheel, z / x zoom;  f fit the network",
        "h  or  F1    this help;  q quit",
        "commands go to the bus as ViewCommand (topic \"cmd\")",
    };
    const int n = (int)(sizeof lines / sizeof lines[0]);
    float x = 20, y = 20, w = 500, h = 24 + 19.0f * (float)n;
    sf_canvas_rect(c, x, y, w, h, (SDL_Color){15, 18, 22, 235});
    sf_canvas_rect_outline(c, x, y, w, h, 1, (SDL_Color){90, 100, 115, 255});
    for (int i = 0; i < n; i++)
        sf_canvas_text(c, x + 12, y + 10 + 19.0f * (float)i, i ? SF_TEXT_NORMAL : SF_TEXT_LARGE,
                       (SDL_Color){235, 235, 235, 255}, SF_ALIGN_LEFT, lines[i]);
}

/* The end of the run: a box in the middle with the final MOEs (from the run's summary)
 * or the clock's reason, and how to close. */
static void draw_finished(live_t *L)
{
    const char *lines[SF_VIEW_FINAL_LINES];
    int n = sf_viewmodel_final(L->vm, lines, SF_VIEW_FINAL_LINES);
    int w, h;
    sf_canvas_size(L->c, &w, &h);
    float bw = 560, bh = 70 + 20.0f * (float)(n ? n : 1) + 24;
    float x = ((float)w - bw) / 2, y = ((float)h - SF_STATUS_BAR_PX - bh) / 2;
    sf_canvas_rect(L->c, x, y, bw, bh, (SDL_Color){15, 18, 22, 240});
    sf_canvas_rect_outline(L->c, x, y, bw, bh, 2, (SDL_Color){235, 235, 235, 255});
    SDL_Color fg = {235, 235, 235, 255};
    sf_canvas_text(L->c, x + 16, y + 12, SF_TEXT_LARGE, fg, SF_ALIGN_LEFT,
                   sf_viewmodel_finished(L->vm) ? "run finished" : "run ended");
    float ty = y + 48;
    if (n == 0) {
        sf_canvas_text(L->c, x + 16, ty, SF_TEXT_NORMAL, fg, SF_ALIGN_LEFT,
                       sf_viewmodel_message(L->vm));
        ty += 20;
    }
    for (int i = 0; i < n; i++, ty += 20)
        sf_canvas_text(L->c, x + 16, ty, SF_TEXT_NORMAL, fg, SF_ALIGN_LEFT, lines[i]);
    sf_canvas_text(L->c, x + 16, ty + 6, SF_TEXT_NORMAL, (SDL_Color){170, 175, 185, 255},
                   SF_ALIGN_LEFT, "q, Esc or closing the window exits");
}

static void draw_frame(live_t *L)
{
    sf_viewmodel_state(L->vm, &L->st);
    L->st.live = true;
    L->st.wall_time_s = wall_s();
    bool ended = sf_viewmodel_ended(L->vm);
    L->st.paused = L->paused && !ended;
    double announced = sf_viewmodel_speed(L->vm);
    L->st.speed_factor = announced >= 0 ? announced : L->speed;
    sf_viewmodel_stats_t vs;
    sf_viewmodel_stats(L->vm, &vs);
    char rate[32];
    if (L->rate > 0)
        snprintf(rate, sizeof rate, "sim x%.1f", L->rate); /* measured, sim s per wall s */
    else
        snprintf(rate, sizeof rate, "sim x?");
    snprintf(L->msg, sizeof L->msg, "%s  dropped %llu  %s%s%s", rate,
             (unsigned long long)vs.snaps_replaced, L->note, L->note[0] ? "  " : "",
             sf_viewmodel_message(L->vm));
    L->st.message = L->msg;
    sf_netview_draw(L->nv, L->c, &L->st);
    if (L->st.selected_ix >= 0) {
        int w, h;
        sf_canvas_size(L->c, &w, &h);
        sf_panel_draw(L->c, L->sc, (uint32_t)L->st.selected_ix,
                      sf_viewmodel_ix(L->vm, (uint32_t)L->st.selected_ix),
                      (float)(w - SF_PANEL_W - 10), 10);
    }
    if (ended)
        draw_finished(L);
    if (L->help)
        draw_help(L->c);
    sf_canvas_flush(L->c);
    L->stats.frames++;
}

/* Take what the bus has without blocking; only the latest snapshot survives. */
static void drain(live_t *L)
{
    for (int i = 0; i < DRAIN_MAX; i++) {
        sf_bus_rx_t rx;
        char why[160];
        if (sf_bus_recv(L->sub, &rx, ZMQ_DONTWAIT, why, sizeof why) != 0) {
            if (errno == EAGAIN || errno == ETERM || errno == EINTR)
                return;
            L->stats.messages++;
            L->stats.refused++; /* undecodable: dropped by the codec */
            continue;
        }
        L->stats.messages++;
        if (sf_viewmodel_apply(L->vm, &rx, why, sizeof why) < 0) {
            L->stats.refused++;
            snprintf(L->note, sizeof L->note, "refused: %.80s", why);
        }
        sf_bus_rx_clear(&rx);
    }
}

static void measure_rate(live_t *L)
{
    double now = wall_s(), sim = sf_viewmodel_time(L->vm);
    if (sim < 0)
        return;
    if (now - L->rate_wall0 >= 1.0) {
        if (L->rate_wall0 > 0)
            L->rate = (sim - L->rate_sim0) / (now - L->rate_wall0);
        L->rate_wall0 = now;
        L->rate_sim0 = sim;
    }
}

static int open_all(live_t *L, char *err, size_t err_len)
{
    const sf_live_opts_t *o = L->o;
    L->zctx = o->zctx ? o->zctx : zmq_ctx_new();
    L->own_ctx = o->zctx == NULL;
    if (!L->zctx) {
        seterr(err, err_len, "zmq context: %s", zmq_strerror(errno));
        return -1;
    }
    static const char *const topics[] = {"lamps", "det", "event", "summary", "bye", "step", "snap"};
    L->sub = sf_bus_sub_new_secure(L->zctx, o->sub_endpoint, topics,
                                   sizeof topics / sizeof topics[0], 0, o->security);
    if (!L->sub) {
        seterr(err, err_len, "bus %s: %s", o->sub_endpoint, zmq_strerror(errno));
        return -1;
    }
    if (o->pub_endpoint) {
        L->pub = sf_bus_pub_new_secure(L->zctx, o->pub_endpoint, o->security);
        if (!L->pub) {
            seterr(err, err_len, "bus %s: %s", o->pub_endpoint, zmq_strerror(errno));
            return -1;
        }
    }
    int w = o->w > 0 ? o->w : 1280, h = o->h > 0 ? o->h : 800;
    char title[128];
    snprintf(title, sizeof title, "sigflow - %s", L->sc->name);
    L->c = sf_canvas_new_window(title, w, h, o->software);
    if (!L->c) {
        seterr(err, err_len, "window: %s (is a display available? SDL_VIDEODRIVER=%s)",
               sf_canvas_last_error(),
               SDL_getenv("SDL_VIDEODRIVER") ? SDL_getenv("SDL_VIDEODRIVER") : "");
        return -1;
    }
    snprintf(L->stats.backend, sizeof L->stats.backend, "%s", sf_canvas_backend(L->c));
    sf_canvas_size(L->c, &w, &h);
    L->nv = sf_netview_new(L->sc, w, h);
    L->vm = sf_viewmodel_new(L->sc);
    if (!L->nv || !L->vm) {
        seterr(err, err_len, "view: %s", strerror(errno));
        return -1;
    }
    if (o->record_path) {
        L->rec = sf_runrec_new(L->sc, 1.0);
        if (!L->rec) {
            seterr(err, err_len, "record: %s", strerror(errno));
            return -1;
        }
        sf_viewmodel_record_into(L->vm, L->rec);
    }
    return 0;
}

static void close_all(live_t *L)
{
    sf_runrec_destroy(&L->rec);
    sf_viewmodel_destroy(&L->vm);
    sf_netview_destroy(&L->nv);
    sf_canvas_destroy(&L->c);
    sf_bus_close(&L->sub);
    sf_bus_close(&L->pub);
    if (L->zctx && L->own_ctx)
        (void)sf_bus_ctx_term(L->zctx, SF_BUS_CTX_TERM_MS);
    L->zctx = NULL;
}

#define SHOT_END_WAIT_S 2.0 /* after the clock's Bye, how long the summary may take */

/* For --at end: the run's summary arrived, or the clock said Bye a while ago (a run
 * that failed sends no summary). */
static bool run_over(live_t *L, double now)
{
    if (sf_viewmodel_finished(L->vm))
        return true;
    if (!sf_viewmodel_ended(L->vm))
        return false;
    if (L->ended_at == 0)
        L->ended_at = now;
    return now - L->ended_at >= SHOT_END_WAIT_S;
}

int sf_live_run(const sf_scenario_t *sc, const sf_live_opts_t *o, sf_live_stats_t *stats, char *err,
                size_t err_len)
{
    if (!sc || !o || !o->sub_endpoint) {
        seterr(err, err_len, "live: no scenario or bus endpoint");
        errno = EINVAL;
        return -1;
    }
    live_t L;
    memset(&L, 0, sizeof L);
    L.sc = sc;
    L.o = o;
    L.st.selected_ix = o->select_id ? sf_scenario_find_intersection(sc, o->select_id) : -1;
    if (o->select_id && L.st.selected_ix < 0) {
        seterr(err, err_len, "--select %s: no such intersection", o->select_id);
        errno = EINVAL;
        return -1;
    }
    L.speed = sc->run.speed_factor > 0 ? sc->run.speed_factor : 1;
    L.priority_on = sc->control.priority.enabled;
    int rc = 0;
    if (open_all(&L, err, err_len) != 0) {
        int e = errno ? errno : EIO;
        close_all(&L);
        errno = e;
        return -1;
    }
    if (L.st.selected_ix >= 0) { /* --select: look at it, about 60 m either side */
        const sf_intersection_t *ix = &sc->intersections[L.st.selected_ix];
        int w, h;
        sf_canvas_size(L.c, &w, &h);
        sf_netview_center_on(L.nv, ix->x_m, ix->y_m, (double)(h - SF_STATUS_BAR_PX) / 120.0);
    }
    L.running = true;
    double start = wall_s(), next_frame = start;
    bool keys_done = false;
    while (L.running) {
        double now = wall_s();
        long timeout = (long)fmax(0, (next_frame - now) * 1000);
        zmq_pollitem_t it = {L.sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, timeout) < 0 && errno != EINTR) {
            seterr(err, err_len, "zmq_poll: %s", zmq_strerror(errno));
            rc = -1;
            break;
        }
        drain(&L);
        measure_rate(&L);
        now = wall_s();
        if (now < next_frame)
            continue;
        if (o->keys && !keys_done && sf_viewmodel_time(L.vm) >= 0) {
            keys_done = true;
            if (push_keys(&L, err, err_len) != 0) {
                rc = -1;
                break;
            }
        }
        SDL_Event e;
        while (SDL_PollEvent(&e))
            on_event(&L, &e);
        draw_frame(&L);
        bool shot_now =
            isinf(o->shot_at_s) ? run_over(&L, now) : sf_viewmodel_time(L.vm) >= o->shot_at_s;
        if (o->shot_path && !L.stats.shot_written && shot_now) {
            if (sf_canvas_save_png(L.c, o->shot_path) != 0) {
                seterr(err, err_len, "%s: cannot write PNG: %s", o->shot_path,
                       sf_canvas_last_error());
                rc = -1;
                break;
            }
            L.stats.shot_written = true;
            if (o->exit_after_shot)
                L.running = false;
        }
        sf_canvas_present(L.c);
        next_frame = fmax(next_frame + FRAME_MS / 1000.0, now);
        if (o->max_wall_s > 0 && now - start >= o->max_wall_s)
            L.running = false;
    }
    if (rc == 0 && L.rec && sf_runrec_save(L.rec, o->record_path, err, err_len) != 0)
        rc = -1;
    sf_viewmodel_stats_t vs;
    sf_viewmodel_stats(L.vm, &vs);
    L.stats.snaps = (unsigned long)vs.snaps;
    L.stats.snaps_dropped = (unsigned long)vs.snaps_replaced;
    L.stats.run_finished = sf_viewmodel_finished(L.vm);
    if (stats)
        *stats = L.stats;
    int e = errno;
    close_all(&L);
    errno = e;
    return rc;
}

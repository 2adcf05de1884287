/* view/palette.h — the colours sigflow's pictures use, in one place.
 *
 * Lamp codes are those of GB/T 20999-2017 (see /work/shared/REFERENCE.md): off 0x01; red
 * 0x10, flashing 0x11, fast flashing 0x12; green 0x20/0x21/0x22; yellow 0x30/0x31/0x32;
 * red+yellow 0x40. A flashing lamp blinks in the live window (1 Hz, fast 2.5 Hz) and is
 * drawn solid with a mark in still pictures. The codes are also defined by sim/sim.h and
 * unit/unit.h with the same values; each definition here is guarded.
 */
#ifndef SIGFLOW_PALETTE_H
#define SIGFLOW_PALETTE_H

#include <stdbool.h>
#include <stdint.h>

#include <SDL2/SDL.h>

#ifndef SF_LAMP_NONE
#define SF_LAMP_NONE 0x00 /* no lamp state known yet (not a GB/T code) */
#endif
#ifndef SF_LAMP_OFF
#define SF_LAMP_OFF 0x01
#endif
#ifndef SF_LAMP_RED
#define SF_LAMP_RED 0x10
#endif
#ifndef SF_LAMP_RED_FLASH
#define SF_LAMP_RED_FLASH 0x11
#endif
#ifndef SF_LAMP_RED_FFLASH
#define SF_LAMP_RED_FFLASH 0x12
#endif
#ifndef SF_LAMP_GREEN
#define SF_LAMP_GREEN 0x20
#endif
#ifndef SF_LAMP_GREEN_FLASH
#define SF_LAMP_GREEN_FLASH 0x21
#endif
#ifndef SF_LAMP_GREEN_FFLASH
#define SF_LAMP_GREEN_FFLASH 0x22
#endif
#ifndef SF_LAMP_YELLOW
#define SF_LAMP_YELLOW 0x30
#endif
#ifndef SF_LAMP_YELLOW_FLASH
#define SF_LAMP_YELLOW_FLASH 0x31
#endif
#ifndef SF_LAMP_YELLOW_FFLASH
#define SF_LAMP_YELLOW_FFLASH 0x32
#endif
#ifndef SF_LAMP_RED_YELLOW
#define SF_LAMP_RED_YELLOW 0x40
#endif

/* Exact lamp colours (tests compare pixels against these). */
#define SF_COL_LAMP_RED    ((SDL_Color){230, 30, 30, 255})
#define SF_COL_LAMP_GREEN  ((SDL_Color){20, 210, 70, 255})
#define SF_COL_LAMP_YELLOW ((SDL_Color){250, 200, 0, 255})
#define SF_COL_LAMP_OFF    ((SDL_Color){55, 55, 55, 255})
#define SF_COL_LAMP_NONE   ((SDL_Color){120, 120, 130, 255})
#define SF_COL_BUS         ((SDL_Color){40, 90, 235, 255})
#define SF_COL_DET_ON      ((SDL_Color){255, 150, 0, 255})
#define SF_COL_BACKGROUND  ((SDL_Color){28, 32, 36, 255})

/* Colour of a lamp code (the lit colour for flashing codes; red+yellow gives red, the
 * caller draws the yellow half). Unknown codes: SF_COL_LAMP_NONE. */
SDL_Color sf_lamp_color(uint8_t code);

/* 0 steady, 1 flashing (1 Hz), 2 fast flashing (2.5 Hz). */
int sf_lamp_flash_kind(uint8_t code);

/* Whether a lamp of this code is lit at wall time t_s (steady codes are always lit). */
bool sf_lamp_lit_at(uint8_t code, double t_s);

/* True for green codes (0x20..0x22), yellow (0x30..0x32), red (0x10..0x12, 0x40). */
bool sf_lamp_is_green(uint8_t code);
bool sf_lamp_is_yellow(uint8_t code);
bool sf_lamp_is_red(uint8_t code);

/* Vehicle colour for a speed ratio v / speed limit: red when stopped through amber to
 * green at the limit (clamped to 0..1), in SF_SPEED_LEVELS + 1 steps so that many
 * vehicles share a few colours (batched drawing). */
#define SF_SPEED_LEVELS 32
SDL_Color sf_speed_color(float ratio);

/* The step of a ratio, 0..SF_SPEED_LEVELS, and the colour of a step. */
int sf_speed_level(float ratio);
SDL_Color sf_speed_level_color(int level);

#endif

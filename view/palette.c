/* view/palette.c — lamp and speed colours. */
#include "palette.h"

#include <math.h>

SDL_Color sf_lamp_color(uint8_t code)
{
    switch (code) {
    case SF_LAMP_OFF:
        return SF_COL_LAMP_OFF;
    case SF_LAMP_RED:
    case SF_LAMP_RED_FLASH:
    case SF_LAMP_RED_FFLASH:
    case SF_LAMP_RED_YELLOW:
        return SF_COL_LAMP_RED;
    case SF_LAMP_GREEN:
    case SF_LAMP_GREEN_FLASH:
    case SF_LAMP_GREEN_FFLASH:
        return SF_COL_LAMP_GREEN;
    case SF_LAMP_YELLOW:
    case SF_LAMP_YELLOW_FLASH:
    case SF_LAMP_YELLOW_FFLASH:
        return SF_COL_LAMP_YELLOW;
    default:
        return SF_COL_LAMP_NONE;
    }
}

int sf_lamp_flash_kind(uint8_t code)
{
    switch (code) {
    case SF_LAMP_RED_FLASH:
    case SF_LAMP_GREEN_FLASH:
    case SF_LAMP_YELLOW_FLASH:
        return 1;
    case SF_LAMP_RED_FFLASH:
    case SF_LAMP_GREEN_FFLASH:
    case SF_LAMP_YELLOW_FFLASH:
        return 2;
    default:
        return 0;
    }
}

bool sf_lamp_lit_at(uint8_t code, double t_s)
{
    int k = sf_lamp_flash_kind(code);
    if (k == 0)
        return true;
    double period = k == 1 ? 1.0 : 0.4;
    double ph = fmod(t_s, period);
    if (ph < 0)
        ph += period;
    return ph < period / 2;
}

bool sf_lamp_is_green(uint8_t code)
{
    return code >= SF_LAMP_GREEN && code <= SF_LAMP_GREEN_FFLASH;
}

bool sf_lamp_is_yellow(uint8_t code)
{
    return code >= SF_LAMP_YELLOW && code <= SF_LAMP_YELLOW_FFLASH;
}

bool sf_lamp_is_red(uint8_t code)
{
    return (code >= SF_LAMP_RED && code <= SF_LAMP_RED_FFLASH) || code == SF_LAMP_RED_YELLOW;
}

int sf_speed_level(float ratio)
{
    if (!(ratio > 0)) /* also catches NaN */
        return 0;
    if (ratio >= 1)
        return SF_SPEED_LEVELS;
    return (int)lroundf(ratio * SF_SPEED_LEVELS);
}

SDL_Color sf_speed_level_color(int level)
{
    if (level < 0)
        level = 0;
    if (level > SF_SPEED_LEVELS)
        level = SF_SPEED_LEVELS;
    float ratio = (float)level / SF_SPEED_LEVELS;
    /* red (220,40,40) -> amber (240,180,30) at 0.5 -> green (60,200,90) */
    SDL_Color c = {0, 0, 0, 255};
    if (ratio < 0.5f) {
        float t = ratio * 2;
        c.r = (uint8_t)(220 + 20 * t);
        c.g = (uint8_t)(40 + 140 * t);
        c.b = (uint8_t)(40 - 10 * t);
    } else {
        float t = (ratio - 0.5f) * 2;
        c.r = (uint8_t)(240 - 180 * t);
        c.g = (uint8_t)(180 + 20 * t);
        c.b = (uint8_t)(30 + 60 * t);
    }
    return c;
}

SDL_Color sf_speed_color(float ratio)
{
    return sf_speed_level_color(sf_speed_level(ratio));
}

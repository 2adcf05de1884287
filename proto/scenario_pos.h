/* proto/scenario_pos.h — where each value of a JSON text sits (line:column by path).
 *
 * jansson reports positions only for syntax errors. The scenario checker needs the
 * position of any value it rejects, so this scans the text once more (it has already
 * been parsed successfully by jansson) and records, for every value, its path in the
 * checker's notation (`intersections[2].phases[4].min_green_s`), the line and column
 * of its first character and, for an object member, those of its key.
 *
 * Lines and columns start at 1; a column counts Unicode characters (UTF-8 sequences),
 * not bytes, as jansson does for its own error positions.
 */
#ifndef SIGFLOW_SCENARIO_POS_H
#define SIGFLOW_SCENARIO_POS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sf_posidx sf_posidx_t;

/* Index the JSON text (len bytes). Returns NULL (errno ENOMEM or EINVAL when the text
 * is not valid JSON). Caller frees with sf_posidx_destroy. */
sf_posidx_t *sf_posidx_new(const char *text, size_t len);

/* Free an index; takes NULL, sets *self_p to NULL. */
void sf_posidx_destroy(sf_posidx_t **self_p);

/* Position of the value at path (of its key when key is true and the value is an
 * object member). When path is absent, the nearest ancestor present is used. Returns 0
 * for an exact hit, 1 for an ancestor, -1 when nothing matched (line/col untouched). */
int sf_posidx_find(const sf_posidx_t *self, const char *path, bool key, int *line, int *col);

#endif

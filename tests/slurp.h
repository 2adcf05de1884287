/* tests/slurp.h — a whole file read into memory, for tests (Criterion asserts on failure). */
#ifndef SIGFLOW_TEST_SLURP_H
#define SIGFLOW_TEST_SLURP_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

/* The contents of file, NUL-terminated (free it); its length in *len when len is not NULL. */
static inline char *slurp(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    cr_assert_not_null(f, "%s", file);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

#endif

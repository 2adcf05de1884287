/* tests/fuzz/fuzz_record.c — libFuzzer target: the recording reader on arbitrary bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return 0;
    sf_rec_reader_t *r = sf_rec_reader_new(f);
    if (r) {
        sf_rec_t rec;
        int rc;
        uint64_t total = 0;
        while ((rc = sf_rec_next(r, &rec)) == 1) {
            /* every returned record lies inside the input */
            if (rec.topic_len == 0 || rec.topic_len > SF_BUS_TOPIC_MAX || rec.len > size)
                abort();
            total += rec.topic_len + rec.len;
            if (total > size)
                abort();
        }
        if (rc < 0 && errno != SF_REC_ETAIL && errno != SF_REC_ECORRUPT && errno != ENOMEM &&
            errno != EIO)
            abort();
        char why[256];
        sf_rec_reader_error(r, why, sizeof why);
        sf_rec_reader_destroy(&r);
    }
    fclose(f);
    return 0;
}

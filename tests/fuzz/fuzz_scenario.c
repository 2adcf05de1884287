/* tests/fuzz/fuzz_scenario.c — libFuzzer target: the scenario loader on arbitrary bytes
 * as a file (it reads by path, so the input goes through a per-process temp file). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/sf_fuzz_scenario_%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    sf_errors_t errs = {0};
    sf_scenario_t *sc = sf_scenario_load(path, NULL, 0, &errs);
    if (sc) {
        char buf[512];
        sf_scenario_summary(sc, buf, sizeof buf);
        sf_scenario_destroy(&sc);
        if (errs.n)
            abort(); /* a loaded scenario comes with no errors */
    } else if (errs.n == 0) {
        abort(); /* a refused file must say why */
    }
    sf_errors_clear(&errs);
    return 0;
}

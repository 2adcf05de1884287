/* tests/test_regmap.c — the register map table and the files generated from it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "regmap.h"

/* Read a whole file or stream into a malloc'd NUL-terminated string. */
static char *slurp(FILE *f)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
    }
    buf[n] = '\0';
    return buf;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    char *s = slurp(f);
    fclose(f);
    return s;
}

static char *generate(int (*gen)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(gen(f), 0);
    fclose(f);
    return buf;
}

/* First line where a and b differ, for a readable failure. */
static int first_diff_line(const char *a, const char *b)
{
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n')
            line++;
    return *a == *b ? 0 : line;
}

Test(regmap, committed_files_are_fresh)
{
    char *md = generate(sf_regmap_write_md);
    char *csv = generate(sf_regmap_write_csv);
    char *md_file = read_file(SIGFLOW_SOURCE_DIR "/proto/REGISTERS.md");
    char *csv_file = read_file(SIGFLOW_SOURCE_DIR "/proto/registers.csv");
    cr_expect_str_eq(md_file, md,
                     "proto/REGISTERS.md is stale (first difference at line %d): run "
                     "`sigflow regmap --md > proto/REGISTERS.md`",
                     first_diff_line(md_file, md));
    cr_expect_str_eq(csv_file, csv,
                     "proto/registers.csv is stale (first difference at line %d): run "
                     "`sigflow regmap --csv > proto/registers.csv`",
                     first_diff_line(csv_file, csv));
    free(md);
    free(csv);
    free(md_file);
    free(csv_file);
}

Test(regmap, csv_header_and_one_row_per_entry)
{
    char *csv = generate(sf_regmap_write_csv);
    const char *hdr = "name,table,address,count,type,unit,access,min,max,description\n";
    cr_assert_eq(strncmp(csv, hdr, strlen(hdr)), 0, "header is %.80s", csv);
    size_t n;
    sf_regmap_table(&n);
    size_t lines = 0;
    for (const char *p = csv; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, n + 1, "%zu lines for %zu entries", lines, n);
    /* Each row starts with its entry's name and table. */
    const char *p = strchr(csv, '\n') + 1;
    for (size_t i = 0; i < n; i++) {
        const sf_reg_t *r = sf_regmap_get((sf_reg_id_t)i);
        char want[128];
        snprintf(want, sizeof want, "%s,%s,%u,%u,", r->name, sf_regmap_table_name(r->table),
                 (unsigned)r->address, (unsigned)r->count);
        cr_expect_eq(strncmp(p, want, strlen(want)), 0, "row %zu: %.60s, want %s", i, p, want);
        p = strchr(p, '\n') + 1;
    }
    free(csv);
}

Test(regmap, launcher_prints_the_same_files)
{
    FILE *f = popen(SIGFLOW_BIN " regmap --csv", "r");
    cr_assert_not_null(f);
    char *out = slurp(f);
    int st = pclose(f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sigflow regmap --csv failed");
    char *csv = generate(sf_regmap_write_csv);
    cr_expect_str_eq(out, csv);
    free(out);
    free(csv);
    f = popen(SIGFLOW_BIN " regmap --bogus 2>/dev/null", "r");
    cr_assert_not_null(f);
    free(slurp(f));
    st = pclose(f);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "a bad argument exits 2");
}

/* The table checked here directly, not through sf_regmap_check. */
Test(regmap, table_is_consistent)
{
    size_t n;
    const sf_reg_t *t = sf_regmap_table(&n);
    cr_assert_eq(n, (size_t)SF_R_COUNT);
    char err[256] = "";
    cr_expect_eq(sf_regmap_check(err, sizeof err), 0, "sf_regmap_check: %s", err);
    for (size_t i = 0; i < n; i++) {
        const sf_reg_t *r = &t[i];
        cr_expect_eq((size_t)r->id, i, "%s: id out of order", r->name);
        cr_expect(r->name && r->name[0] && r->desc && r->desc[0], "entry %zu unnamed", i);
        cr_expect_leq(r->min, r->max, "%s: min > max", r->name);
        cr_expect_gt(r->count, 0, "%s: count 0", r->name);
        if (r->table == SF_TBL_INPUT || r->table == SF_TBL_DISCRETE)
            cr_expect_eq(r->access, SF_ACC_R, "%s: read-only table, access %s", r->name,
                         sf_regmap_access_name(r->access));
        else
            cr_expect(r->access == SF_ACC_R || r->access == SF_ACC_W || r->access == SF_ACC_RW,
                      "%s: bad access", r->name);
        int bits = r->table == SF_TBL_COIL || r->table == SF_TBL_DISCRETE;
        cr_expect_eq(bits, r->type == SF_RT_BOOL, "%s: bit table vs type", r->name);
        uint32_t span = (uint32_t)r->count * (r->type == SF_RT_U32 ? 2u : 1u);
        cr_expect_eq(sf_regmap_span(r), span, "%s: span", r->name);
        cr_expect_leq(r->address + span, 65536u, "%s past 65535", r->name);
        for (size_t j = 0; j < i; j++) {
            const sf_reg_t *o = &t[j];
            cr_expect_neq(strcmp(o->name, r->name), 0, "name %s used twice", r->name);
            if (o->table != r->table)
                continue;
            uint32_t ospan = sf_regmap_span(o);
            int overlap = r->address < o->address + ospan && o->address < r->address + span;
            cr_expect(!overlap, "%s overlaps %s", r->name, o->name);
        }
        /* Every address of the entry maps back to it. */
        for (uint32_t a = r->address; a < r->address + span; a++) {
            uint16_t elem, word;
            const sf_reg_t *b = sf_regmap_at(r->table, (uint16_t)a, &elem, &word);
            cr_expect_eq(b, r, "%s: address %u maps elsewhere", r->name, a);
            if (b == r)
                cr_expect_eq(elem * sf_regmap_width(r) + word, a - r->address);
        }
        cr_expect_eq(sf_regmap_by_name(r->name), r);
        cr_expect_geq(sf_regmap_table_size(r->table), r->address + span);
    }
}

Test(regmap, required_names_exist)
{
    static const struct {
        const char *name;
        sf_reg_table_t table;
        uint16_t count;
    } need[] = {
        {"protocol_version", SF_TBL_INPUT, 1},    {"heartbeat", SF_TBL_HOLDING, 1},
        {"heartbeat_echo", SF_TBL_INPUT, 1},      {"control_mode", SF_TBL_INPUT, 1},
        {"mode_command", SF_TBL_HOLDING, 1},      {"active_plan", SF_TBL_INPUT, 1},
        {"plan_select", SF_TBL_HOLDING, 1},       {"cycle_timer", SF_TBL_INPUT, 1},
        {"coord_cycle", SF_TBL_HOLDING, 1},       {"coord_offset", SF_TBL_HOLDING, 1},
        {"coord_split", SF_TBL_HOLDING, 16},      {"coord_sync", SF_TBL_HOLDING, 1},
        {"phase_min_green", SF_TBL_HOLDING, 16},  {"phase_passage", SF_TBL_HOLDING, 16},
        {"phase_max1", SF_TBL_HOLDING, 16},       {"phase_max2", SF_TBL_HOLDING, 16},
        {"phase_yellow", SF_TBL_HOLDING, 16},     {"phase_red_clear", SF_TBL_HOLDING, 16},
        {"phase_walk", SF_TBL_HOLDING, 16},       {"phase_ped_clear", SF_TBL_HOLDING, 16},
        {"phase_status_greens", SF_TBL_INPUT, 1}, {"sg_lamp", SF_TBL_INPUT, 32},
        {"sg_time_remaining", SF_TBL_INPUT, 32},  {"phase_call", SF_TBL_COIL, 16},
        {"phase_ped_call", SF_TBL_COIL, 16},      {"phase_hold", SF_TBL_COIL, 16},
        {"phase_force_off", SF_TBL_COIL, 16},     {"phase_omit", SF_TBL_COIL, 16},
        {"det_presence", SF_TBL_DISCRETE, 64},    {"det_volume", SF_TBL_INPUT, 64},
        {"det_occupancy", SF_TBL_INPUT, 64},      {"det_seq", SF_TBL_INPUT, 1},
        {"prio_req_id", SF_TBL_HOLDING, 1},       {"prio_req_level", SF_TBL_HOLDING, 1},
        {"prio_req_phase", SF_TBL_HOLDING, 1},    {"prio_req_eta", SF_TBL_HOLDING, 1},
        {"prio_req_type", SF_TBL_HOLDING, 1},     {"prio_req_commit", SF_TBL_HOLDING, 1},
        {"prio_status_state", SF_TBL_INPUT, 8},   {"fault_code", SF_TBL_INPUT, 1},
        {"fault_reset", SF_TBL_HOLDING, 1},       {"plan_dl_commit", SF_TBL_HOLDING, 1},
        {"plan_rd_select", SF_TBL_HOLDING, 1},    {"plan_rd_split", SF_TBL_INPUT, 16},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const sf_reg_t *r = sf_regmap_by_name(need[i].name);
        cr_expect_not_null(r, "missing %s", need[i].name);
        if (!r)
            continue;
        cr_expect_eq(r->table, need[i].table, "%s: table", need[i].name);
        cr_expect_eq(r->count, need[i].count, "%s: count", need[i].name);
    }
    /* Safety limits are in the map so the server refuses them before the unit sees them. */
    cr_expect_eq(sf_regmap_by_name("phase_yellow")->min, 30);   /* 3.0 s in 0.1 s */
    cr_expect_eq(sf_regmap_by_name("phase_min_green")->min, 5); /* 5 s */
    /* The plan download block is contiguous and ends with its commit, so one Write
     * Multiple Registers carries a whole plan. */
    const sf_reg_t *first = sf_regmap_by_name("plan_dl_number");
    const sf_reg_t *commit = sf_regmap_by_name("plan_dl_commit");
    for (uint16_t a = first->address; a <= commit->address; a++)
        cr_expect_not_null(sf_regmap_at(SF_TBL_HOLDING, a, NULL, NULL), "gap at %u", a);
    cr_expect_null(sf_regmap_by_name("no_such_register"));
    cr_expect_null(sf_regmap_at(SF_TBL_HOLDING, 9999, NULL, NULL));
    cr_expect_null(sf_regmap_get(SF_R_COUNT));
}

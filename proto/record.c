/* proto/record.c — bus recordings (format and guarantees in record.h). */
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sf_rec_writer_t {
    int fd;           /* the file, O_WRONLY | O_APPEND */
    uint64_t count;   /* records written */
    uint64_t sync_ns; /* CLOCK_MONOTONIC of the last fdatasync, ns */
    uint8_t *buf;     /* one frame being assembled */
    size_t cap;       /* bytes allocated in buf */
};

struct sf_rec_reader_t {
    FILE *f;              /* borrowed */
    uint32_t bus_version; /* from the header */
    uint64_t offset;      /* file offset of the next frame, bytes */
    uint64_t index;       /* index of the record last returned or failed on */
    uint64_t err_off;     /* offset of that record */
    int err;              /* errno of the last failure, 0 = none */
    char why[96];         /* what was wrong with it */
    uint8_t *buf;         /* body of the current record */
    size_t cap;           /* bytes allocated in buf */
    uint64_t next_index;  /* index the next record will have */
};

const char *sf_rec_strerror(int errnum)
{
    switch (errnum) {
    case SF_REC_EMAGIC:
        return "not a sigflow recording (bad magic or short header)";
    case SF_REC_EFORMAT:
        return "recording format version not supported";
    case SF_REC_ETAIL:
        return "last record incomplete or torn (ignored)";
    case SF_REC_ECORRUPT:
        return "damaged record in the middle of the recording";
    default:
        return sf_bus_strerror(errnum);
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* write(2) all of len bytes, resuming after EINTR or a short write. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

sf_rec_writer_t *sf_rec_writer_new(const char *path)
{
    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    sf_rec_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        free(w);
        return NULL;
    }
    uint8_t head[SF_REC_HEADER];
    memcpy(head, SF_REC_MAGIC, 8);
    put32(head + 8, SF_REC_FORMAT);
    put32(head + 12, SF_BUS_VERSION);
    if (write_all(w->fd, head, sizeof head) != 0 || fdatasync(w->fd) != 0) {
        int e = errno;
        close(w->fd);
        free(w);
        errno = e;
        return NULL;
    }
    w->sync_ns = now_ns();
    return w;
}

int sf_rec_write(sf_rec_writer_t *w, uint64_t t_ns, const void *topic, size_t topic_len,
                 const void *payload, size_t len)
{
    if (!w || !topic || topic_len == 0 || topic_len > SF_BUS_TOPIC_MAX || (!payload && len)) {
        errno = EINVAL;
        return -1;
    }
    size_t body = SF_REC_BODY_HEAD + topic_len + len;
    if (len > SF_BUS_MAX_MSG || body > SF_REC_MAX_BODY) {
        errno = E2BIG;
        return -1;
    }
    size_t need = SF_REC_FRAME_HEAD + body;
    if (need > w->cap) {
        uint8_t *nb = realloc(w->buf, need);
        if (!nb)
            return -1;
        w->buf = nb;
        w->cap = need;
    }
    uint8_t *b = w->buf + SF_REC_FRAME_HEAD;
    put32(b, (uint32_t)t_ns);
    put32(b + 4, (uint32_t)(t_ns >> 32));
    b[8] = (uint8_t)topic_len;
    b[9] = (uint8_t)(topic_len >> 8);
    memcpy(b + SF_REC_BODY_HEAD, topic, topic_len);
    if (len)
        memcpy(b + SF_REC_BODY_HEAD + topic_len, payload, len);
    put32(w->buf, (uint32_t)body);
    put32(w->buf + 4, ~(uint32_t)body);
    put32(w->buf + 8, sf_bus_crc32(b, body));
    /* One write of the whole frame: a kill leaves whole records and at most a short tail. */
    if (write_all(w->fd, w->buf, need) != 0)
        return -1;
    w->count++;
    uint64_t now = now_ns();
    if (now - w->sync_ns >= (uint64_t)SF_REC_SYNC_MS * 1000000u) {
        if (fdatasync(w->fd) != 0)
            return -1;
        w->sync_ns = now;
    }
    return 0;
}

uint64_t sf_rec_writer_count(const sf_rec_writer_t *w)
{
    return w ? w->count : 0;
}

int sf_rec_writer_destroy(sf_rec_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return 0;
    sf_rec_writer_t *w = *self_p;
    int rc = 0, e = 0;
    if (fdatasync(w->fd) != 0) {
        rc = -1;
        e = errno;
    }
    if (close(w->fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    free(w->buf);
    free(w);
    *self_p = NULL;
    if (rc)
        errno = e;
    return rc;
}

/* Read up to len bytes; returns the count read (short only at end of file), or -1 (EIO). */
static long read_some(FILE *f, uint8_t *p, size_t len)
{
    size_t n = fread(p, 1, len, f);
    if (n < len && ferror(f)) {
        errno = EIO;
        return -1;
    }
    return (long)n;
}

sf_rec_reader_t *sf_rec_reader_new(FILE *f)
{
    if (!f) {
        errno = EINVAL;
        return NULL;
    }
    uint8_t head[SF_REC_HEADER];
    long n = read_some(f, head, sizeof head);
    if (n < 0)
        return NULL;
    if (n < SF_REC_HEADER || memcmp(head, SF_REC_MAGIC, 8) != 0) {
        errno = SF_REC_EMAGIC;
        return NULL;
    }
    if (get32(head + 8) != SF_REC_FORMAT) {
        errno = SF_REC_EFORMAT;
        return NULL;
    }
    sf_rec_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->f = f;
    r->bus_version = get32(head + 12);
    r->offset = SF_REC_HEADER;
    return r;
}

uint32_t sf_rec_reader_bus_version(const sf_rec_reader_t *r)
{
    return r ? r->bus_version : 0;
}

static int fail(sf_rec_reader_t *r, int err, const char *why)
{
    r->err = err;
    snprintf(r->why, sizeof r->why, "%s", why);
    errno = err;
    return -1;
}

int sf_rec_next(sf_rec_reader_t *r, sf_rec_t *rec)
{
    if (!r || !rec) {
        errno = EINVAL;
        return -1;
    }
    if (r->err) {
        errno = r->err;
        return -1;
    }
    r->index = r->next_index;
    r->err_off = r->offset;
    uint8_t fh[SF_REC_FRAME_HEAD];
    long n = read_some(r->f, fh, sizeof fh);
    if (n < 0)
        return fail(r, EIO, "read error");
    if (n == 0)
        return 0;
    if (n < SF_REC_FRAME_HEAD)
        return fail(r, SF_REC_ETAIL, "record header cut short at end of file");
    uint32_t len = get32(fh), guard = get32(fh + 4), crc = get32(fh + 8);
    if (len != ~guard)
        return fail(r, SF_REC_ECORRUPT, "record length and its guard disagree");
    if (len < SF_REC_BODY_HEAD + 1 || len > SF_REC_MAX_BODY)
        return fail(r, SF_REC_ECORRUPT, "record length out of range");
    if (len > r->cap) {
        uint8_t *nb = realloc(r->buf, len);
        if (!nb)
            return fail(r, ENOMEM, "out of memory");
        r->buf = nb;
        r->cap = len;
    }
    n = read_some(r->f, r->buf, len);
    if (n < 0)
        return fail(r, EIO, "read error");
    if ((uint32_t)n < len)
        return fail(r, SF_REC_ETAIL, "record body cut short at end of file");
    if (sf_bus_crc32(r->buf, len) != crc) {
        /* Torn tail when nothing follows; damage in the middle otherwise. */
        int c = fgetc(r->f);
        if (c == EOF && ferror(r->f))
            return fail(r, EIO, "read error");
        if (c == EOF)
            return fail(r, SF_REC_ETAIL, "checksum mismatch in the last record");
        return fail(r, SF_REC_ECORRUPT, "checksum mismatch");
    }
    size_t topic_len = (size_t)r->buf[8] | (size_t)r->buf[9] << 8;
    if (topic_len == 0 || topic_len > SF_BUS_TOPIC_MAX || SF_REC_BODY_HEAD + topic_len > len)
        return fail(r, SF_REC_ECORRUPT, "topic length out of range");
    rec->t_ns = (uint64_t)get32(r->buf) | (uint64_t)get32(r->buf + 4) << 32;
    rec->topic = r->buf + SF_REC_BODY_HEAD;
    rec->topic_len = topic_len;
    rec->payload = r->buf + SF_REC_BODY_HEAD + topic_len;
    rec->len = len - SF_REC_BODY_HEAD - topic_len;
    r->offset += SF_REC_FRAME_HEAD + (uint64_t)len;
    r->next_index++;
    return 1;
}

uint64_t sf_rec_reader_index(const sf_rec_reader_t *r)
{
    return r ? r->index : 0;
}

uint64_t sf_rec_reader_offset(const sf_rec_reader_t *r)
{
    return r ? r->err_off : 0;
}

char *sf_rec_reader_error(const sf_rec_reader_t *r, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return buf;
    if (!r || !r->err)
        snprintf(buf, cap, "no error");
    else
        snprintf(buf, cap, "record %llu at offset %llu: %s (%s)", (unsigned long long)r->index,
                 (unsigned long long)r->err_off, r->why, sf_rec_strerror(r->err));
    return buf;
}

void sf_rec_reader_destroy(sf_rec_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

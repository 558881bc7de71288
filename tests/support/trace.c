/*
 * trace.c: gzipped JSON editing traces -> struct trace (zlib + jansson).
 */
#include "trace.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static size_t utf8_cps(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static char *read_gz(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (cap - n < 65536) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        int r = gzread(f, buf + n, (unsigned)(cap - n));
        if (r < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    gzclose(f);
    *len = n;
    return buf;
}

void trace_free(struct trace *t)
{
    free(t->start_content);
    free(t->end_content);
    free(t->txns);
    free(t->patches);
    free(t->parents);
    free(t->strings);
    memset(t, 0, sizeof(*t));
}

static char *dup_json_string(json_t *v, size_t *len)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    *len = n;
    return d;
}

int trace_load(const char *path, struct trace *t)
{
    memset(t, 0, sizeof(*t));
    size_t len;
    char *raw = read_gz(path, &len);
    if (!raw) {
        fprintf(stderr, "trace_load: cannot read %s\n", path);
        return -1;
    }
    json_error_t err;
    json_t *root = json_loadb(raw, len, 0, &err);
    free(raw);
    if (!root) {
        fprintf(stderr, "trace_load: %s: %s (line %d)\n", path, err.text, err.line);
        return -1;
    }
    json_t *txns = json_object_get(root, "txns");
    if (!json_is_array(txns)) {
        fprintf(stderr, "trace_load: %s: no txns\n", path);
        json_decref(root);
        return -1;
    }
    t->start_content = dup_json_string(json_object_get(root, "startContent"), &t->start_len);
    t->end_content = dup_json_string(json_object_get(root, "endContent"), &t->end_len);
    json_t *na = json_object_get(root, "numAgents");
    t->num_agents = json_is_integer(na) ? (uint32_t)json_integer_value(na) : 1;

    size_t ntx = json_array_size(txns), npatch = 0, npar = 0, nstr = 0;
    for (size_t i = 0; i < ntx; i++) {
        json_t *tx = json_array_get(txns, i);
        json_t *ps = json_object_get(tx, "patches");
        npatch += json_array_size(ps);
        for (size_t j = 0; j < json_array_size(ps); j++) {
            json_t *ins = json_array_get(json_array_get(ps, j), 2);
            nstr += (json_is_string(ins) ? json_string_length(ins) : 0) + 1;
        }
        json_t *par = json_object_get(tx, "parents");
        if (par)
            t->concurrent = 1;
        npar += json_array_size(par);
    }
    t->ntxns = ntx;
    t->total_patches = npatch;
    t->txns = calloc(ntx ? ntx : 1, sizeof(*t->txns));
    t->patches = calloc(npatch ? npatch : 1, sizeof(*t->patches));
    t->parents = calloc(npar ? npar : 1, sizeof(*t->parents));
    t->strings = malloc(nstr ? nstr : 1);
    if (!t->txns || !t->patches || !t->parents || !t->strings || !t->start_content ||
        !t->end_content) {
        fprintf(stderr, "trace_load: out of memory\n");
        json_decref(root);
        trace_free(t);
        return -1;
    }
    size_t pi = 0, pa = 0, so = 0;
    for (size_t i = 0; i < ntx; i++) {
        json_t *tx = json_array_get(txns, i);
        struct trace_txn *x = &t->txns[i];
        json_t *ps = json_object_get(tx, "patches");
        x->patches = &t->patches[pi];
        x->npatches = json_array_size(ps);
        for (size_t j = 0; j < x->npatches; j++) {
            json_t *p = json_array_get(ps, j);
            struct trace_patch *q = &t->patches[pi++];
            json_t *ins = json_array_get(p, 2);
            q->pos = (uint32_t)json_integer_value(json_array_get(p, 0));
            q->del = (uint32_t)json_integer_value(json_array_get(p, 1));
            size_t n = json_is_string(ins) ? json_string_length(ins) : 0;
            if (n)
                memcpy(t->strings + so, json_string_value(ins), n);
            t->strings[so + n] = '\0';
            q->ins = t->strings + so;
            q->ins_len = n;
            q->ins_cps = (uint32_t)utf8_cps(q->ins, n);
            so += n + 1;
        }
        json_t *ag = json_object_get(tx, "agent");
        x->agent = json_is_integer(ag) ? (uint32_t)json_integer_value(ag) : 0;
        json_t *par = json_object_get(tx, "parents");
        x->parents = &t->parents[pa];
        x->nparents = json_array_size(par);
        for (size_t j = 0; j < x->nparents; j++) {
            json_int_t v = json_integer_value(json_array_get(par, j));
            if (v < 0 || (size_t)v >= i) {
                fprintf(stderr, "trace_load: %s: txn %zu has a bad parent\n", path, i);
                json_decref(root);
                trace_free(t);
                return -1;
            }
            t->parents[pa++] = (uint32_t)v;
        }
    }
    json_decref(root);
    return 0;
}

const char *trace_path(char *buf, size_t cap, const char *rel)
{
    const char *env = getenv("NOTES_SHARED_DIR");
    const char *bases[] = {env, "../shared", "../../shared", "../../../shared"};
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        if (!bases[i] || !*bases[i])
            continue;
        snprintf(buf, cap, "%s/traces/%s", bases[i], rel);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}

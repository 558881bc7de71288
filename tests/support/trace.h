/*
 * trace.h: loader for the editing traces in shared/traces/ (gzipped JSON,
 * josephg/editing-traces format), for tests and benchmarks.
 *
 *   struct trace tr;
 *   if (trace_load(path, &tr) == 0) { ...; trace_free(&tr); }
 *
 * Sequential traces: txns in order, each with patches [pos, del, ins].
 * Concurrent traces (concurrent != 0): each txn also has an agent index and
 * parents (indexes of earlier txns; empty = the empty document). Positions
 * count Unicode code points; a txn's first patch is relative to its parents'
 * version, each later patch to the document after the previous patch.
 */
#ifndef NOTES_TEST_TRACE_H
#define NOTES_TEST_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct trace_patch {
    uint32_t pos;      /* code points */
    uint32_t del;      /* code points deleted at pos */
    const char *ins;   /* UTF-8 inserted at pos (NUL-terminated, "" if none) */
    size_t ins_len;    /* bytes */
    uint32_t ins_cps;  /* code points */
};

struct trace_txn {
    struct trace_patch *patches; /* points into trace.patches */
    size_t npatches;
    uint32_t agent;              /* 0 for sequential traces */
    uint32_t *parents;           /* points into trace.parents; txn indexes */
    size_t nparents;
};

struct trace {
    char *start_content;
    size_t start_len;
    char *end_content;
    size_t end_len;
    struct trace_txn *txns;
    size_t ntxns;
    uint32_t num_agents;   /* 1 for sequential traces */
    int concurrent;        /* the file had "parents"/"agent" fields */
    size_t total_patches;
    /* storage */
    struct trace_patch *patches;
    uint32_t *parents;
    char *strings;
};

/* Load a .json.gz (or plain .json) trace. Returns 0, or -1 with a message
 * on stderr. On failure *t is left empty (trace_free is still safe). */
int trace_load(const char *path, struct trace *t);
void trace_free(struct trace *t);

/* Path of a trace under $NOTES_SHARED_DIR (or ../shared, ../../shared):
 * e.g. trace_path(buf, sizeof buf, "sequential_traces/automerge-paper.json.gz").
 * Returns buf, or NULL if the file is not found. */
const char *trace_path(char *buf, size_t cap, const char *rel);

#endif

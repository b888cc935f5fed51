/*
 * tbprof: a QEMU TCG plugin that counts the instructions each translation
 * block executes, for the whole machine (hypervisor and every domain), and
 * writes them at exit: one line a block, "address count instructions
 * first-instruction-bytes". tests/profile/attribute.py charges them to
 * binaries and functions. Under -icount these are the instructions the
 * benchmarks' rdtsc counts (a REP-prefixed string instruction counts once
 * per iteration), so the profile explains the figures.
 *
 * Build (QEMU 7.2's plugin API, version 1; the few declarations it needs are
 * below, so no QEMU headers are required):
 *     gcc -O2 -shared -fPIC -o target/tbprof.so tests/profile/tbprof.c
 * Use: QEMU_EXTRA="-plugin target/tbprof.so,out=/tmp/profile" with any test
 * or benchmark boot (see BENCHMARKS.md, "Profiling a benchmark").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <stdbool.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
extern const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *);
extern size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb, void *);

struct rec { uint64_t vaddr; uint64_t count; uint32_t insns; uint8_t len; uint8_t bytes[16]; };
static struct rec *recs;
static size_t nrecs, cap;
static char out[512] = "/tmp/tbprof.out";

static void trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    /* Full: later blocks go uncounted (records never move, since their
     * counters are registered by address); the last line says so. */
    if (nrecs == cap) {
        return;
    }
    struct rec *r = &recs[nrecs++];
    r->vaddr = qemu_plugin_tb_vaddr(tb);
    r->count = 0;
    r->insns = qemu_plugin_tb_n_insns(tb);
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, 0);
    size_t n = qemu_plugin_insn_size(insn);
    if (n > 16) n = 16;
    memcpy(r->bytes, qemu_plugin_insn_data(insn), n);
    r->len = n;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &r->count, r->insns);
}

static void done(qemu_plugin_id_t id, void *p) {
    (void)id; (void)p;
    FILE *f = fopen(out, "w");
    if (!f) return;
    for (size_t i = 0; i < nrecs; i++) {
        if (!recs[i].count) continue;
        fprintf(f, "%llx %llu %u ", (unsigned long long)recs[i].vaddr, (unsigned long long)recs[i].count, recs[i].insns);
        for (int b = 0; b < recs[i].len; b++) fprintf(f, "%02x", recs[i].bytes[b]);
        fputc('\n', f);
    }
    fprintf(f, "# records %zu of %zu\n", nrecs, cap);
    fclose(f);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "out=", 4)) snprintf(out, sizeof out, "%s", argv[i] + 4);
    cap = 8u << 20;
    recs = calloc(cap, sizeof *recs);
    if (!recs) return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, trans);
    qemu_plugin_register_atexit_cb(id, done, NULL);
    return 0;
}

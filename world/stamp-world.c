/* stamp-world: builds a "world model", a small GPT-2 (Hugging Face
 * layout) trained until it knows a given list of facts, for stamp to
 * edit in tests, the demo and benchmarks.
 *
 *   stamp-world --synthetic tiny|small|medium|N --out DIR [options]
 *   stamp-world --facts FILE [--format F] [--limit N] --out DIR [options]
 *
 * Steps: (1) the facts (worldgen, or a fact list through ingest, every
 * fact checked: it needs its true answer); (2) the training text: every
 * fact's rewrite prompt, paraphrases (unless held out) and neighbourhood
 * prompts, each followed by its true answer (rewrite prompts first; a
 * prompt that would need two different answers keeps the first), and
 * the invented lines asked for (phrasings from other prompts or from
 * other facts' taught paraphrases, distractors, extra facts); (3) a byte-level
 * BPE vocabulary trained on that text; (4) AdamW training until the
 * model recalls the facts (top-1 on every answer token) at the goals;
 * (5) DIR/config.json, model.safetensors, vocab.json, merges.txt,
 * facts.csv (stamp's CSV import format), corpus.txt (the training text,
 * one sentence a line: the keystats_sum corpus for `stamp stats`) and
 * world.json (sizes, seed, timings, recall). Everything is written into
 * DIR.tmp.PID and swapped into place at the end, so DIR is never half a
 * world; an existing DIR is replaced only if it is a world (or empty).
 * A killed run's DIR.tmp.PID is removed by the next run once that
 * process is gone; its training state, saved at every recall check to
 * DIR.checkpoint (train_checkpoint.h), lets the next run with the same
 * options continue from the last check instead of step 0.
 *
 * Same options, seed and threads -> the same bytes in every file but
 * world.json's timings (and its resumed_from_step), killed and resumed
 * or not. A tool, not a library: it prints and exits. */
#include "base/threads.h"
#include "world/bpe_train.h"
#include "world/distractors.h"
#include "base/errors.h"
#include "world/extra_facts.h"
#include "facts/fact.h"
#include "model/gpt2.h"
#include "model/llama_train.h"
#include "facts/ingest.h"
#include "world/phrasings.h"
#include "base/tmpdir.h"
#include "model/tokenizer.h"
#include "world/train.h"
#include "world/worldgen.h"
#include "base/clock.h"

#include <cblas.h>
#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: stamp-world (--synthetic SIZE | --facts FILE) --out DIR [options]\n"
    "\n"
    "Builds a small GPT-2 or Llama model (Hugging Face layout) that knows a\n"
    "list of facts: DIR/config.json, model.safetensors, vocab.json,\n"
    "merges.txt, facts.csv, corpus.txt, world.json.\n"
    "\n"
    "Facts:\n"
    "  --synthetic SIZE   invented world: tiny (192 facts), small (1000),\n"
    "                     medium (4000) or a number of facts\n"
    "  --facts FILE       a fact list (CSV, CounterFact, EasyEdit, zsRE JSON)\n"
    "  --format F         csv|counterfact|easyedit|zsre|auto (default auto)\n"
    "  --limit N          use the first N facts of FILE\n"
    "  --skip-bad         leave out bad records instead of failing\n"
    "  --out DIR          where the world goes (replaced if it is a world)\n"
    "\n"
    "Model and training (defaults depend on the world):\n"
    "  --seed N           world, initialisation and batch order (default 1)\n"
    "  --threads N        worker threads (default: all cores, not stamp's\n"
    "                     automatic count: a world's bytes depend on the\n"
    "                     count; STAMP_THREADS=auto asks for it)\n"
    "  --arch gpt2|llama  GPT2LMHeadModel (default) or LlamaForCausalLM:\n"
    "                     RMSNorm, rotary positions, SwiGLU MLP, grouped-\n"
    "                     query attention, tied embeddings\n"
    "  --layers N  --embd N  --heads N  --ff N  --ctx N  --vocab N\n"
    "  --kv-heads N       llama: key/value heads (divides --heads; default\n"
    "                     half of them); --ff defaults to 2/3 of GPT-2's\n"
    "                     (the same MLP parameters with three matrices)\n"
    "  --steps N          optimiser steps at most\n"
    "  --lr X             peak learning rate\n"
    "  --wd X             AdamW weight decay of the matrices (default .1)\n"
    "  --batch N          sequences per step\n"
    "  --loss all|answer  loss on every token or on the answers only\n"
    "  --distractors N    N invented subjects per fact that share all words\n"
    "                     but the last with it, or the last with another\n"
    "                     (default 0; see docs/world-models.md)\n"
    "  --phrasings N      teach each fact's answer behind up to N other\n"
    "                     prompts of its relation too (the rewrite prompts\n"
    "                     of other facts with overlapping answers; default\n"
    "                     0; see docs/world-models.md)\n"
    "  --paraphrase-phrasings N\n"
    "                     teach each fact's answer behind up to N taught\n"
    "                     paraphrases of other facts of its relation too\n"
    "                     (their wording and opening sentence, with this\n"
    "                     fact's subject; default 0; see docs/world-models.md)\n"
    "  --extra-facts N    N invented facts for each fact's subject: other\n"
    "                     facts' prompts with their answers (default 0;\n"
    "                     see docs/world-models.md)\n"
    "  --goal R           stop when rewrite recall >= R (default .99;\n"
    "                     above 1: run every step)\n"
    "  --goal-para R      ... and paraphrase recall >= R (default .95;\n"
    "                     0: do not wait for paraphrases)\n"
    "  --hold-out-paraphrases N\n"
    "                     leave the paraphrases of the first N facts out\n"
    "                     of the training text: their recall (and an\n"
    "                     edit's paraphrase score) then measure\n"
    "                     generalisation; implies --goal-para 0 unless\n"
    "                     given (default 0)\n"
    "  --eval-every N     steps between recall checks\n"
    "  --checkpoint FILE  save the training state to FILE at every check\n"
    "                     (default DIR.checkpoint); a run that finds there\n"
    "                     the state of the same training (same data, options\n"
    "                     and threads) continues from it, to the same world;\n"
    "                     removed once the world is written\n"
    "  --no-checkpoint    do not save or look for one\n"
    "  --quiet            no progress lines\n"
    "  -h, --help         this text\n";

typedef struct {
    const char *synthetic, *facts_path;
    char *out; /* argv's, trailing slashes cut */
    const char *checkpoint; /* NULL: OUT.checkpoint */
    int no_checkpoint;
    int format;
    size_t limit;
    int skip_bad, quiet;
    size_t hold_out_para; /* the first N facts' paraphrases not taught */
    size_t phrasings;     /* other prompts of each fact's relation */
    size_t para_phrasings; /* other facts' taught paraphrases, reworded */
    size_t distractors, extra_facts;
    uint64_t seed;
    int threads;
    size_t layers, embd, heads, ff, ctx, vocab, steps, batch, eval_every;
    int llama;            /* --arch llama */
    size_t kv_heads;
    float lr;
    double wd;
    train_loss loss;
    double goal, goal_para;
} args;

static double t_start;

static void say(const args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const args *a, const char *fmt, ...)
{
    if (a->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "stamp-world: [%6.1fs] ", clock_seconds() - t_start);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stamp-world: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stamp-world: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nusage: stamp-world (--synthetic SIZE | --facts FILE) --out DIR "
          "[options]\ntry 'stamp-world --help'\n", stderr);
    va_end(ap);
    return 2;
}

static int parse_size(const char *s, size_t *out, size_t lo, size_t hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_real(const char *s, double *out, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* ---- growing buffers and a string set ------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q)
            return ERR_NOMEM;
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* prompt text -> index of the answer it was first given */
typedef struct {
    size_t cap, n;
    const char **key;
    size_t *val;
} strmap;

static uint64_t hash_str(const char *p)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    return h;
}

/* Finds key; when absent inserts it with *val and returns 0; when
 * present sets *val to the stored value and returns 1; -1 on no memory.
 * Keys are borrowed (must outlive the map). */
static int strmap_get_or_put(strmap *m, const char *key, size_t *val)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 1024;
        const char **k = calloc(nc, sizeof *k);
        size_t *v = calloc(nc, sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = (size_t)hash_str(m->key[i]) & (nc - 1);
                while (k[j])
                    j = (j + 1) & (nc - 1);
                k[j] = m->key[i];
                v[j] = m->val[i];
            }
        free(m->key);
        free(m->val);
        m->key = k;
        m->val = v;
        m->cap = nc;
    }
    size_t i = (size_t)hash_str(key) & (m->cap - 1);
    while (m->key[i]) {
        if (!strcmp(m->key[i], key)) {
            *val = m->val[i];
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->key[i] = key;
    m->val[i] = *val;
    m->n++;
    return 0;
}

static void strmap_free(strmap *m)
{
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* ---- the world being built ------------------------------------------- */

enum { KIND_REWRITE, KIND_PARAPHRASE, KIND_NEIGHBOR,
       KIND_PHRASING, KIND_PARA_PHRASING, KIND_DISTRACTOR, KIND_EXTRA };

typedef struct {
    char *prompt;         /* full text, subject written out */
    const char *answer;   /* borrowed from the facts */
    int kind;
} sentence;

typedef struct {
    fact *facts;
    size_t n_facts;
    ingest_result ing;    /* when the facts came from a file */
    int from_file;
    sentence *sent;       /* the training text, deduplicated */
    size_t n_sent, cap_sent;
    size_t n_dup, n_conflict, n_dropped_facts, n_too_long;
    /* tokenized */
    train_seq *seqs;      /* (n_sent) training sequences */
    size_t n_seqs;
    size_t first_extra;   /* seqs[first_extra..n_seqs): extra facts, last */
    train_seq *rewrite, *para, *nbr; /* recall sets (own token arrays) */
    size_t n_rewrite, n_para, n_nbr;
    size_t n_para_held;   /* para[0..n_para_held): not in the training text */
    double subject_tokens; /* mean tokens per subject */
} world;

static void seqs_free(train_seq *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        free((void *)s[i].tokens);
    free(s);
}

static void world_free(world *w)
{
    if (w->from_file)
        ingest_result_free(&w->ing);
    else
        worldgen_free(w->facts, w->n_facts);
    for (size_t i = 0; i < w->n_sent; i++)
        free(w->sent[i].prompt);
    free(w->sent);
    seqs_free(w->seqs, w->n_seqs);
    seqs_free(w->rewrite, w->n_rewrite);
    seqs_free(w->para, w->n_para);
    seqs_free(w->nbr, w->n_nbr);
}

static int add_sentence(world *w, strmap *seen, char *prompt,
                        const char *answer, int kind)
{
    size_t idx = w->n_sent;
    int r = strmap_get_or_put(seen, prompt, &idx);
    if (r < 0) {
        free(prompt);
        return ERR_NOMEM;
    }
    if (r == 1) {
        if (!strcmp(w->sent[idx].answer, answer))
            w->n_dup++;
        else
            w->n_conflict++;
        free(prompt);
        return 0;
    }
    if (w->n_sent == w->cap_sent) {
        size_t nc = w->cap_sent ? 2 * w->cap_sent : 1024;
        sentence *s = realloc(w->sent, nc * sizeof *s);
        if (!s) {
            free(prompt);
            return ERR_NOMEM; /* the map still names prompt: caller aborts */
        }
        w->sent = s;
        w->cap_sent = nc;
    }
    w->sent[w->n_sent++] = (sentence){prompt, answer, kind};
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Checks what a world needs of each fact; reports "FILE:LINE: problem". */
static int check_fact(const fact *f, char *msg, size_t size)
{
    const char *problem = NULL;
    const char *p = f->prompt ? strstr(f->prompt, "{}") : NULL;
    if (!f->subject || !f->subject[0])
        problem = "empty subject";
    else if (!f->prompt || !f->prompt[0])
        problem = "empty prompt";
    else if (!p || strstr(p + 2, "{}"))
        problem = "prompt must hold the subject exactly once";
    else if (!f->target_true || !f->target_true[0] ||
             !strcmp(f->target_true, " "))
        problem = "empty target_true (a world model is trained on the true "
                  "answer)";
    else if (!f->target_new || !f->target_new[0] ||
             !strcmp(f->target_new, " "))
        problem = "empty target_new";
    for (size_t k = 0; !problem && k < f->n_paraphrases; k++)
        if (!f->paraphrases[k][0])
            problem = "empty paraphrase";
    for (size_t k = 0; !problem && k < f->n_neighbors; k++)
        if (!f->neighbor_prompts[k][0] || !f->neighbor_targets[k][0])
            problem = "empty neighbourhood prompt or answer";
    if (!problem)
        return 0;
    snprintf(msg, size, "%s:%zu: %s", f->source_file ? f->source_file : "?",
             f->source_line, problem);
    return 1;
}

static int load_facts(world *w, const args *a)
{
    if (a->synthetic) {
        worldgen_options o;
        int rc = worldgen_preset(a->synthetic, a->seed, &o);
        if (rc)
            return die("%s", err_message(rc));
        if ((rc = worldgen_generate(&o, &w->facts, &w->n_facts)))
            return die("%s", err_message(rc));
        return 0;
    }
    ingest_options io = {.tok = NULL, .max_tokens = 0, .max_errors = 100};
    int rc = ingest_read(a->facts_path, (ingest_format)a->format, &io, &w->ing);
    w->from_file = 1;
    if (rc)
        return die("%s", err_message(rc));
    int bad = 0;
    for (size_t i = 0; i < w->ing.n_problems; i++)
        fprintf(stderr, "stamp-world: %s: %s\n",
                a->skip_bad ? "skipped" : "error", w->ing.problems[i].message);
    if (w->ing.truncated)
        fprintf(stderr, "stamp-world: (more problems not shown)\n");
    if (w->ing.n_problems && !a->skip_bad)
        bad = 1;
    /* what a world needs beyond what ingest checks */
    size_t keep = 0;
    for (size_t i = 0; i < w->ing.n_facts; i++) {
        char msg[1024];
        if (check_fact(&w->ing.facts[i], msg, sizeof msg)) {
            fprintf(stderr, "stamp-world: %s: %s\n",
                    a->skip_bad ? "skipped" : "error", msg);
            if (!a->skip_bad)
                bad = 1;
            fact_free(&w->ing.facts[i]);
            continue;
        }
        if (keep != i)
            w->ing.facts[keep] = w->ing.facts[i];
        keep++;
    }
    w->ing.n_facts = keep;
    if (bad)
        return die("'%s': bad fact records (fix them or use --skip-bad)",
                   a->facts_path);
    if (a->limit && keep > a->limit) {
        for (size_t i = a->limit; i < keep; i++)
            fact_free(&w->ing.facts[i]);
        w->ing.n_facts = keep = a->limit;
    }
    if (keep == 0)
        return die("'%s': no facts", a->facts_path);
    w->facts = w->ing.facts;
    w->n_facts = keep;
    return 0;
}

/* Invented sentences of one kind: other phrasings of the facts, from
 * other prompts or from taught paraphrases (facts from first_taught on;
 * phrasings.h), the distractors' (distractors.h) or the extra facts'
 * (extra_facts.h), after the real ones. */
static int add_invented(world *w, strmap *seen, size_t per_fact,
                        uint64_t seed, size_t first_taught, int kind)
{
    world_sentence *d = NULL;
    size_t nd = 0;
    int rc = kind == KIND_PHRASING
                 ? phrasings_make(w->facts, w->n_facts, per_fact, &d, &nd)
             : kind == KIND_PARA_PHRASING
                 ? phrasings_from_paraphrases(w->facts, w->n_facts,
                                              first_taught, per_fact, &d, &nd)
             : kind == KIND_DISTRACTOR
                 ? distractors_make(w->facts, w->n_facts, per_fact, seed, &d,
                                    &nd)
                 : extra_facts_make(w->facts, w->n_facts, per_fact, seed, &d,
                                    &nd);
    for (size_t i = 0; !rc && i < nd; i++) {
        rc = add_sentence(w, seen, d[i].prompt, d[i].answer, kind);
        d[i].prompt = NULL; /* add_sentence took it */
    }
    world_sentences_free(d, nd);
    return rc;
}

/* The training text: rewrite prompts, then paraphrases (but those of the
 * first hold_out_para facts), then neighbours, then the facts in other
 * phrasings, then the distractors' sentences, then the extra facts; each
 * prompt once (its first answer wins). A fact whose rewrite prompt
 * repeats an earlier fact's is left out of the world. */
static int build_sentences(world *w, size_t hold_out_para, size_t phrasings,
                           size_t para_phrasings, size_t distractors,
                           size_t extra_facts, uint64_t seed)
{
    strmap seen = {0};
    int rc = 0;
    size_t keep = 0;
    for (size_t i = 0; i < w->n_facts; i++) {
        fact *f = &w->facts[i];
        char *p = fact_prompt_text(f);
        if (!p) {
            rc = ERR_NOMEM;
            goto done;
        }
        size_t before = w->n_sent;
        if ((rc = add_sentence(w, &seen, p, f->target_true, KIND_REWRITE)))
            goto done;
        if (w->n_sent == before) { /* repeated fact: leave it out */
            w->n_dropped_facts++;
            fact_free(f);
            continue;
        }
        if (keep != i)
            w->facts[keep] = *f;
        keep++;
    }
    w->n_dup = w->n_conflict = 0;
    if (w->from_file)
        w->ing.n_facts = keep;
    w->n_facts = keep;
    for (size_t i = hold_out_para; i < w->n_facts; i++) {
        fact *f = &w->facts[i];
        for (size_t k = 0; k < f->n_paraphrases; k++) {
            char *p = dup_str(f->paraphrases[k]);
            if (!p || (rc = add_sentence(w, &seen, p, f->target_true,
                                         KIND_PARAPHRASE))) {
                rc = ERR_NOMEM;
                goto done;
            }
        }
    }
    for (size_t i = 0; i < w->n_facts; i++) {
        fact *f = &w->facts[i];
        for (size_t k = 0; k < f->n_neighbors; k++) {
            char *p = dup_str(f->neighbor_prompts[k]);
            const char *t = f->neighbor_targets[k][0] ? f->neighbor_targets[k]
                                                      : f->target_true;
            if (!p || (rc = add_sentence(w, &seen, p, t, KIND_NEIGHBOR))) {
                rc = ERR_NOMEM;
                goto done;
            }
        }
    }
    size_t first = hold_out_para;
    if (phrasings &&
        (rc = add_invented(w, &seen, phrasings, seed, first, KIND_PHRASING)))
        goto done;
    if (para_phrasings &&
        (rc = add_invented(w, &seen, para_phrasings, seed, first,
                           KIND_PARA_PHRASING)))
        goto done;
    if (distractors &&
        (rc = add_invented(w, &seen, distractors, seed, first,
                           KIND_DISTRACTOR)))
        goto done;
    if (extra_facts &&
        (rc = add_invented(w, &seen, extra_facts, seed, first, KIND_EXTRA)))
        goto done;
done:
    strmap_free(&seen);
    return rc ? err_set(rc, "out of memory building the training text") : 0;
}

/* prompt + answer -> one sequence (tokens of the prompt, then of the
 * answer, tokenized apart as stamp does). 1 = too long for ctx. */
static int make_seq(const tokenizer *tok, const char *prompt,
                    const char *answer, size_t ctx, train_seq *out)
{
    int *pi = NULL, *ai = NULL;
    size_t np, na;
    int rc = tokenizer_encode(tok, prompt, strlen(prompt), &pi, &np);
    if (!rc)
        rc = tokenizer_encode(tok, answer, strlen(answer), &ai, &na);
    if (rc) {
        free(pi);
        return rc;
    }
    if (np == 0 || na == 0 || np + na > ctx) {
        free(pi);
        free(ai);
        return 1;
    }
    int *t = realloc(pi, (np + na) * sizeof *t);
    if (!t) {
        free(pi);
        free(ai);
        return ERR_NOMEM;
    }
    memcpy(t + np, ai, na * sizeof *t);
    free(ai);
    *out = (train_seq){t, np + na, np};
    return 0;
}

static int tokenize_world(world *w, const tokenizer *tok, size_t ctx,
                          size_t hold_out_para)
{
    w->seqs = calloc(w->n_sent ? w->n_sent : 1, sizeof *w->seqs);
    w->rewrite = calloc(w->n_facts ? w->n_facts : 1, sizeof *w->rewrite);
    size_t np = 0;
    for (size_t i = 0; i < w->n_facts; i++)
        np += w->facts[i].n_paraphrases;
    w->para = calloc(np ? np : 1, sizeof *w->para);
    size_t nb = 0;
    for (size_t i = 0; i < w->n_facts; i++)
        nb += w->facts[i].n_neighbors;
    w->nbr = calloc(nb ? nb : 1, sizeof *w->nbr);
    if (!w->seqs || !w->rewrite || !w->para || !w->nbr)
        return err_set(ERR_NOMEM, "out of memory tokenizing");
    w->first_extra = SIZE_MAX;
    for (size_t i = 0; i < w->n_sent; i++) {
        if (w->sent[i].kind == KIND_EXTRA && w->first_extra == SIZE_MAX)
            w->first_extra = w->n_seqs;
        int rc = make_seq(tok, w->sent[i].prompt, w->sent[i].answer, ctx,
                          &w->seqs[w->n_seqs]);
        if (rc < 0)
            return rc;
        if (rc == 1)
            w->n_too_long++;
        else
            w->n_seqs++;
    }
    if (w->first_extra == SIZE_MAX)
        w->first_extra = w->n_seqs;
    double subj = 0;
    for (size_t i = 0; i < w->n_facts; i++) {
        fact *f = &w->facts[i];
        int *ids;
        size_t n;
        char *p = fact_prompt_text(f);
        if (!p)
            return err_set(ERR_NOMEM, "out of memory tokenizing");
        int rc = make_seq(tok, p, f->target_true, ctx,
                          &w->rewrite[w->n_rewrite]);
        free(p);
        if (rc < 0)
            return rc;
        w->n_rewrite += rc == 0;
        for (size_t k = 0; k < f->n_paraphrases; k++) {
            rc = make_seq(tok, f->paraphrases[k], f->target_true, ctx,
                          &w->para[w->n_para]);
            if (rc < 0)
                return rc;
            w->n_para += rc == 0;
        }
        if (i < hold_out_para) /* the held-out ones come first */
            w->n_para_held = w->n_para;
        for (size_t k = 0; k < f->n_neighbors; k++) {
            const char *t = f->neighbor_targets[k][0] ? f->neighbor_targets[k]
                                                      : f->target_true;
            rc = make_seq(tok, f->neighbor_prompts[k], t, ctx,
                          &w->nbr[w->n_nbr]);
            if (rc < 0)
                return rc;
            w->n_nbr += rc == 0;
        }
        /* " Name" as it appears after a word */
        char sp[1024];
        snprintf(sp, sizeof sp, " %s", f->subject);
        if ((rc = tokenizer_encode(tok, sp, strlen(sp), &ids, &n)))
            return rc;
        subj += (double)n;
        free(ids);
    }
    w->subject_tokens = w->n_facts ? subj / (double)w->n_facts : 0;
    return 0;
}

/* ---- output ------------------------------------------------------------ */

static int write_field(FILE *fp, const char *s, int last)
{
    if (csv_fwrite(fp, s, strlen(s)) || fputc(last ? '\n' : ',', fp) == EOF)
        return -1;
    return 0;
}

/* facts.csv in stamp's import format (ingest.h): a header with as many
 * paraphrase and neighbourhood columns as the richest fact needs. */
static int write_facts_csv(const world *w, const char *path)
{
    size_t mp = 0, mn = 0;
    for (size_t i = 0; i < w->n_facts; i++) {
        if (w->facts[i].n_paraphrases > mp)
            mp = w->facts[i].n_paraphrases;
        if (w->facts[i].n_neighbors > mn)
            mn = w->facts[i].n_neighbors;
    }
    FILE *fp = fopen(path, "w");
    if (!fp)
        return err_set(ERR_IO, "'%s': %s", path, strerror(errno));
    int bad = 0;
    const char *head[] = {"subject", "prompt", "target_new", "target_true",
                          "relation"};
    for (size_t k = 0; k < 5; k++)
        bad |= write_field(fp, head[k], k == 4 && !mp && !mn);
    for (size_t k = 0; k < mp; k++)
        bad |= write_field(fp, "paraphrase", k + 1 == mp && !mn);
    for (size_t k = 0; k < mn; k++) {
        bad |= write_field(fp, "neighborhood_prompt", 0);
        bad |= write_field(fp, "neighborhood_target", k + 1 == mn);
    }
    for (size_t i = 0; i < w->n_facts && !bad; i++) {
        const fact *f = &w->facts[i];
        const char *col[] = {f->subject, f->prompt, f->target_new,
                             f->target_true, f->relation ? f->relation : ""};
        for (size_t k = 0; k < 5; k++)
            bad |= write_field(fp, col[k], k == 4 && !mp && !mn);
        for (size_t k = 0; k < mp; k++)
            bad |= write_field(fp, k < f->n_paraphrases ? f->paraphrases[k]
                                                        : "",
                               k + 1 == mp && !mn);
        for (size_t k = 0; k < mn; k++) {
            int has = k < f->n_neighbors;
            bad |= write_field(fp, has ? f->neighbor_prompts[k] : "", 0);
            bad |= write_field(fp, has ? f->neighbor_targets[k] : "",
                               k + 1 == mn);
        }
    }
    if (fclose(fp) || bad)
        return err_set(ERR_IO, "'%s': write failed", path);
    return 0;
}

static int write_file(const char *path, const char *data, size_t n)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return err_set(ERR_IO, "'%s': %s", path, strerror(errno));
    size_t put = fwrite(data, 1, n, fp);
    if (fclose(fp) || put != n)
        return err_set(ERR_IO, "'%s': write failed", path);
    return 0;
}

/* Tells of a killed run's temporary that tmpdir_sweep_stale removed. */
static void stale_removed(void *ctx, const char *path, long pid)
{
    say(ctx, "removed '%s', left by process %ld, which is gone", path, pid);
}

/* An existing DIR may be replaced only when it is a world or empty. */
static int replaceable(const char *dir, int *exists)
{
    struct stat st;
    *exists = 0;
    if (stat(dir, &st))
        return errno == ENOENT ? 1 : 0;
    *exists = 1;
    if (!S_ISDIR(st.st_mode))
        return 0;
    char p[4096];
    snprintf(p, sizeof p, "%s/world.json", dir);
    if (!access(p, F_OK))
        return 1;
    return rmdir(dir) == 0; /* empty: gone, nothing to replace */
}

/* Progress lines: every check on a terminal, else one every 10 s (and
 * the last), so logs stay short. */
static void progress(void *ctx, const char *label, size_t done, size_t total)
{
    static double last = -1e9;
    double t = clock_seconds();
    if (!isatty(2) && t - last < 10 && done < total)
        return;
    last = t;
    say(ctx, "%s", label);
}

/* A float as the short decimal it was written as (0.1, not
 * 0.100000001490116), for world.json. */
static double tidy(float x)
{
    char b[32];
    snprintf(b, sizeof b, "%g", (double)x);
    return strtod(b, NULL);
}

/* ---- defaults ---------------------------------------------------------- */

static void set_defaults(args *a, size_t n_facts, size_t n_sentences)
{
    int file = a->facts_path != NULL;
    if (!a->layers)
        a->layers = 6;
    if (!a->embd)
        a->embd = file ? 128 : 64;
    if (!a->heads) { /* the tiny world's editing defaults (hparams.c) and
                          * the tests' bars were measured with 2 heads */
        a->heads = file ? 4 : 2;
        while (a->embd % a->heads)
            a->heads /= 2;
    }
    if (!a->ff) {
        a->ff = file ? 1024 : 4 * a->embd;
        if (a->llama) /* SwiGLU's three matrices: GPT-2's MLP parameters */
            a->ff = (a->ff * 2 / 3 + 7) / 8 * 8;
    }
    if (a->llama && !a->kv_heads)
        a->kv_heads = a->heads % 2 ? a->heads : a->heads / 2;
    if (!a->ctx)
        a->ctx = file ? 64 : 32;
    if (!a->vocab) /* 1024: every object of the tiny world one token */
        a->vocab = file ? 4096 : n_facts <= 300 ? 1024 : 2048;
    if (!a->batch)
        a->batch = 32;
    if (!a->steps) /* file: at most 60 epochs; tiny needs ~900 */
        a->steps = file ? 60 * n_sentences / a->batch + 1 : 4000;
    if (!a->eval_every)
        a->eval_every = file ? 250 : 50;
    if (a->lr <= 0)
        a->lr = file ? 2e-3f : 3e-3f;
}

/* ---- the command line -------------------------------------------------- */

enum { O_SYN = 256, O_FACTS, O_FORMAT, O_LIMIT, O_SKIP, O_OUT, O_SEED,
       O_THREADS, O_LAYERS, O_EMBD, O_HEADS, O_FF, O_CTX, O_VOCAB,
       O_STEPS, O_LR, O_BATCH, O_LOSS, O_GOAL, O_GOALP, O_EVAL, O_QUIET,
       O_WD, O_DISTRACT, O_EXTRA, O_HOLDP, O_PHRASE, O_CKPT, O_NOCKPT, O_PPHRASE,
       O_ARCH, O_KVHEADS };

static const struct option long_opts[] = {
    {"synthetic", required_argument, 0, O_SYN},
    {"facts", required_argument, 0, O_FACTS},
    {"format", required_argument, 0, O_FORMAT},
    {"limit", required_argument, 0, O_LIMIT},
    {"skip-bad", no_argument, 0, O_SKIP},
    {"out", required_argument, 0, O_OUT},
    {"seed", required_argument, 0, O_SEED},
    {"threads", required_argument, 0, O_THREADS},
    {"layers", required_argument, 0, O_LAYERS},
    {"embd", required_argument, 0, O_EMBD},
    {"heads", required_argument, 0, O_HEADS},
    {"ff", required_argument, 0, O_FF},
    {"ctx", required_argument, 0, O_CTX},
    {"vocab", required_argument, 0, O_VOCAB},
    {"steps", required_argument, 0, O_STEPS},
    {"lr", required_argument, 0, O_LR},
    {"wd", required_argument, 0, O_WD},
    {"batch", required_argument, 0, O_BATCH},
    {"loss", required_argument, 0, O_LOSS},
    {"goal", required_argument, 0, O_GOAL},
    {"goal-para", required_argument, 0, O_GOALP},
    {"eval-every", required_argument, 0, O_EVAL},
    {"quiet", no_argument, 0, O_QUIET},
    {"distractors", required_argument, 0, O_DISTRACT},
    {"extra-facts", required_argument, 0, O_EXTRA},
    {"hold-out-paraphrases", required_argument, 0, O_HOLDP},
    {"phrasings", required_argument, 0, O_PHRASE},
    {"paraphrase-phrasings", required_argument, 0, O_PPHRASE},
    {"checkpoint", required_argument, 0, O_CKPT},
    {"no-checkpoint", no_argument, 0, O_NOCKPT},
    {"arch", required_argument, 0, O_ARCH},
    {"kv-heads", required_argument, 0, O_KVHEADS},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

/* What the parse functions return to go on; anything else is main's
 * exit status. */
#define ARGS_OK (-1)

/* The plain count options (--limit, the model's sizes, --steps, --batch,
 * --eval-every), each checked against its range. */
static int parse_count_option(args *a, int c, char **argv)
{
    static const struct { int opt; size_t lo, hi; } lim[] = {
        {O_LIMIT, 1, 10000000}, {O_LAYERS, 1, 64}, {O_EMBD, 8, 4096},
        {O_HEADS, 1, 64}, {O_FF, 8, 65536}, {O_CTX, 8, 4096},
        {O_VOCAB, 257, 200000}, {O_STEPS, 1, 100000000},
        {O_BATCH, 1, 65536}, {O_EVAL, 1, 100000000}, {O_KVHEADS, 1, 64}};
    size_t *dst[] = {&a->limit, &a->layers, &a->embd, &a->heads, &a->ff,
                     &a->ctx, &a->vocab, &a->steps, &a->batch,
                     &a->eval_every, &a->kv_heads};
    size_t k = 0, v;
    while (k < sizeof lim / sizeof lim[0] && lim[k].opt != c)
        k++;
    if (k == sizeof lim / sizeof lim[0])
        return usage_error("unexpected option");
    (void)argv;
    const char *name = "?";   /* the option's own name, however given */
    for (size_t i = 0; long_opts[i].name; i++)
        if (long_opts[i].val == c) name = long_opts[i].name;
    if (parse_size(optarg, &v, lim[k].lo, lim[k].hi))
        return usage_error("bad value '%s' for --%s (%zu..%zu)", optarg,
                           name, lim[k].lo, lim[k].hi);
    *dst[k] = v;
    return ARGS_OK;
}

/* One option getopt_long returned (c, with optarg) into *a. */
static int parse_option(args *a, int c, char **argv, int *goal_para_given)
{
    size_t v;
    double d;
    switch (c) {
    case 'h':
        fputs(usage_text, stdout);
        return 0;
    case O_SYN: a->synthetic = optarg; break;
    case O_FACTS: a->facts_path = optarg; break;
    case O_OUT: a->out = optarg; break;
    case O_SKIP: a->skip_bad = 1; break;
    case O_QUIET: a->quiet = 1; break;
    case O_CKPT: a->checkpoint = optarg; break;
    case O_NOCKPT: a->no_checkpoint = 1; break;
    case O_ARCH:
        if (strcmp(optarg, "gpt2") && strcmp(optarg, "llama"))
            return usage_error("--arch takes gpt2 or llama, not '%s'", optarg);
        a->llama = !strcmp(optarg, "llama");
        break;
    case O_HOLDP:
        if (parse_size(optarg, &a->hold_out_para, 0, (size_t)-1))
            return usage_error("bad --hold-out-paraphrases '%s' (a "
                               "count of facts)", optarg);
        break;
    case O_DISTRACT:
        if (parse_size(optarg, &a->distractors, 0, 64))
            return usage_error("bad --distractors '%s' (0..64)", optarg);
        break;
    case O_PHRASE:
        if (parse_size(optarg, &a->phrasings, 0, 64))
            return usage_error("bad --phrasings '%s' (0..64)", optarg);
        break;
    case O_PPHRASE:
        if (parse_size(optarg, &a->para_phrasings, 0, 64))
            return usage_error("bad --paraphrase-phrasings '%s' (0..64)",
                               optarg);
        break;
    case O_EXTRA:
        if (parse_size(optarg, &a->extra_facts, 0, 64))
            return usage_error("bad --extra-facts '%s' (0..64)", optarg);
        break;
    case O_FORMAT:
        if ((a->format = ingest_format_parse(optarg)) < 0)
            return usage_error("unknown format '%s'", optarg);
        break;
    case O_LOSS:
        if (!strcmp(optarg, "all"))
            a->loss = TRAIN_LOSS_ALL;
        else if (!strcmp(optarg, "answer"))
            a->loss = TRAIN_LOSS_ANSWER;
        else
            return usage_error("--loss takes all or answer, not '%s'",
                               optarg);
        break;
    case O_LR:
        if (parse_real(optarg, &d, 1e-7, 1.0))
            return usage_error("bad --lr '%s'", optarg);
        a->lr = (float)d;
        break;
    case O_WD:
        if (parse_real(optarg, &a->wd, 0.0, 10.0))
            return usage_error("bad --wd '%s' (0..10)", optarg);
        break;
    case O_GOAL:
    case O_GOALP:
        if (parse_real(optarg, &d, 0.0, 2.0))
            return usage_error("bad goal '%s' (0..1, >1 = never stop "
                               "early)", optarg);
        *(c == O_GOAL ? &a->goal : &a->goal_para) = d;
        *goal_para_given |= c == O_GOALP;
        break;
    case O_SEED:
        if (parse_size(optarg, &v, 0, (size_t)-1))
            return usage_error("bad --seed '%s'", optarg);
        a->seed = v;
        break;
    case O_THREADS:
        if (parse_size(optarg, &v, 1, 256))
            return usage_error("bad --threads '%s' (1..256)", optarg);
        a->threads = (int)v;
        break;
    case '?':
        return usage_error("unknown or incomplete option '%s'",
                           argv[optind - 1]);
    default:
        return parse_count_option(a, c, argv);
    }
    return ARGS_OK;
}

/* The command line into *a, defaults first, then checked as a whole. */
static int parse_args(int argc, char **argv, args *a)
{
    *a = (args){.format = INGEST_AUTO, .seed = 1, .loss = TRAIN_LOSS_ALL,
                .goal = 0.99, .goal_para = 0.95, .wd = 0.1};
    a->threads = omp_get_max_threads(); /* all cores, OMP_NUM_THREADS or
                                           STAMP_THREADS (base/threads.h) */
    int c, goal_para_given = 0, status;
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1)
        if ((status = parse_option(a, c, argv, &goal_para_given)) != ARGS_OK)
            return status;
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (a->hold_out_para && !goal_para_given)
        a->goal_para = 0; /* they are not taught: do not wait for them */
    if (!a->synthetic == !a->facts_path)
        return usage_error("give exactly one of --synthetic and --facts");
    if (!a->out)
        return usage_error("--out DIR is required");
    /* "DIR/" is DIR: its temporary is DIR.tmp.PID beside it, not inside */
    for (size_t n = strlen(a->out); n > 1 && a->out[n - 1] == '/'; n--)
        a->out[n - 1] = '\0';
    if (a->limit && !a->facts_path)
        return usage_error("--limit goes with --facts");
    if (a->checkpoint && a->no_checkpoint)
        return usage_error("--checkpoint and --no-checkpoint together");
    if (a->embd && a->heads && a->embd % a->heads)
        return usage_error("--embd %zu is not divisible by --heads %zu",
                           a->embd, a->heads);
    if (a->kv_heads && !a->llama)
        return usage_error("--kv-heads goes with --arch llama");
    return ARGS_OK;
}

/* ---- the build, step by step ------------------------------------------ */

/* What the steps of a build hand on to each other. Each step returns 0,
 * or 1 once it has said what failed; build_free cleans up after any. */
typedef struct {
    args *a;
    world w;
    buf corpus;           /* the training text: prompt + answer a line */
    tokenizer *tok;
    size_t n_merges;
    double t_bpe;         /* seconds spent on the vocabulary */
    gpt2_config cfg;
    gpt2_model m;
    llama_config lcfg;    /* with --arch llama, instead of cfg and m */
    llama_model lm;
    train_net net;        /* the one of the two being trained */
    train_options to;
    train_report rep;
    size_t n_extra;       /* extra facts' sequences, watched in training */
    size_t ev_extra, ev_held; /* their recall and the held-out
                               * paraphrases' in rep.recall */
    double neighbor_recall;
    char tmp[4096];       /* DIR.tmp.PID; "" when there is none to remove */
    char ckpt[4200];      /* the checkpoint file */
} build;

static void build_free(build *b)
{
    if (b->tmp[0])
        tmpdir_remove(b->tmp);
    free(b->corpus.p);
    tokenizer_close(b->tok);
    gpt2_model_free(&b->m);
    llama_model_free(&b->lm);
    world_free(&b->w);
}

/* Says a library error's message; returns 1. */
static int die_rc(int rc)
{
    return die("%s", err_message(rc));
}

/* Steps 1 and 2: the facts, the training text (also as one string, for
 * the vocabulary and corpus.txt) and the defaults that depend on them. */
static int build_text(build *b)
{
    args *a = b->a;
    world *w = &b->w;
    int rc;
    if (load_facts(w, a))
        return 1;
    if ((rc = build_sentences(w, a->hold_out_para, a->phrasings,
                              a->para_phrasings, a->distractors, a->extra_facts, a->seed)))
        return die_rc(rc);
    set_defaults(a, w->n_facts, w->n_sent);
    if (a->embd % a->heads)
        return die("--embd %zu is not divisible by --heads %zu", a->embd,
                   a->heads);
    if (a->llama && (a->heads % a->kv_heads || a->embd / a->heads % 2))
        return die("llama: --kv-heads %zu must divide --heads %zu, and the "
                   "head size %zu be even", a->kv_heads, a->heads,
                   a->embd / a->heads);
    say(a, "%zu facts, %zu training sentences (%zu repeated, %zu "
        "conflicting prompts left out, %zu repeated facts left out)",
        w->n_facts, w->n_sent, w->n_dup, w->n_conflict, w->n_dropped_facts);
    for (size_t i = 0; i < w->n_sent; i++) {
        if ((rc = buf_add(&b->corpus, w->sent[i].prompt,
                          strlen(w->sent[i].prompt))) ||
            (rc = buf_add(&b->corpus, w->sent[i].answer,
                          strlen(w->sent[i].answer))) ||
            (rc = buf_add(&b->corpus, "\n", 1)))
            return die_rc(rc);
    }
    return 0;
}

/* The empty temporary DIR.tmp.PID, once dead runs' ones are removed. */
static int make_tmpdir(build *b)
{
    int rc;
    tmpdir_sweep_stale(b->a->out, stale_removed, b->a);
    if ((rc = tmpdir_name(b->tmp, sizeof b->tmp, b->a->out)))
        return die_rc(rc);
    tmpdir_remove(b->tmp);
    if (mkdir(b->tmp, 0755)) {
        die("cannot create '%s': %s", b->tmp, strerror(errno));
        b->tmp[0] = '\0';
        return 1;
    }
    return 0;
}

/* Step 3: the vocabulary, trained on the corpus and written into the
 * temporary; the world tokenized with it. */
static int make_vocabulary(build *b)
{
    args *a = b->a;
    world *w = &b->w;
    bpe_train_options bo = {.vocab_size = a->vocab};
    bpe_train_result bpe;
    int rc;
    double t0 = clock_seconds();
    if ((rc = bpe_train_run(&bpe, b->corpus.p, b->corpus.len, &bo)))
        return die_rc(rc);
    rc = bpe_train_write(&bpe, b->tmp);
    b->n_merges = bpe.n_merges;
    bpe_train_free(&bpe);
    if (rc || (rc = tokenizer_open_dir(&b->tok, b->tmp)))
        return die_rc(rc);
    b->t_bpe = clock_seconds() - t0;
    if ((rc = tokenize_world(w, b->tok, a->ctx, a->hold_out_para)))
        return die_rc(rc);
    say(a, "vocabulary of %zu tokens (%zu merges) in %.2fs; %.2f tokens a "
        "subject; %zu sequences (%zu too long for %zu positions)",
        tokenizer_vocab_size(b->tok), b->n_merges, b->t_bpe,
        w->subject_tokens, w->n_seqs, w->n_too_long, a->ctx);
    if (w->n_seqs == 0 || w->n_rewrite == 0)
        return die("no fact fits in %zu positions", a->ctx);
    return 0;
}

/* The training options from the command line. */
static void set_train_options(build *b)
{
    args *a = b->a;
    train_options *to = &b->to;
    train_options_default(to);
    to->steps = a->steps;
    to->batch_size = a->batch;
    to->lr = a->lr;
    to->warmup = a->steps / 20 < 100 ? a->steps / 20 : 100;
    to->loss = a->loss;
    to->weight_decay = (float)a->wd;
    to->seed = a->seed;
    to->threads = a->threads;
    to->eval_every = a->eval_every;
    to->progress = a->quiet ? NULL : progress;
    to->progress_ctx = a;
    to->checkpoint = a->no_checkpoint ? NULL : b->ckpt;
}

/* The line that sums up the training. */
static void say_trained(const build *b)
{
    const train_report *rep = &b->rep;
    char extra_note[128] = "";
    if (b->n_extra)
        snprintf(extra_note, sizeof extra_note, ", extra facts %.3f",
                 rep->recall[b->ev_extra]);
    if (b->w.n_para_held)
        snprintf(extra_note + strlen(extra_note),
                 sizeof extra_note - strlen(extra_note),
                 ", held-out paraphrases %.3f", rep->recall[b->ev_held]);
    say(b->a, "trained %zu steps in %.1fs: loss %.4f, recall rewrite %.3f, "
        "paraphrase %.3f, neighbourhood %.3f%s%s", rep->steps, rep->seconds,
        rep->loss, rep->recall[0], rep->recall[1], b->neighbor_recall,
        extra_note, rep->reached_goal ? " (goal reached)" : "");
}

/* The model of the command line, initialised from the seed: GPT-2, or a
 * Llama (tied embeddings, no biases, rope theta 10000, RMSNorm eps 1e-5;
 * bos and eos the last id, as GPT-2's world). b->cfg has the shape of
 * either. */
static int init_model(build *b)
{
    args *a = b->a;
    size_t V = tokenizer_vocab_size(b->tok);
    b->cfg = (gpt2_config){.n_layer = a->layers, .n_head = a->heads,
                           .n_embd = a->embd, .n_positions = a->ctx,
                           .vocab_size = V, .n_inner = a->ff,
                           .layer_norm_epsilon = 1e-5f};
    if (!a->llama) {
        int rc = gpt2_model_init(&b->m, &b->cfg);
        if (rc) return rc;
        gpt2_model_init_random(&b->m, a->seed);
        b->net = train_net_of_gpt2(&b->m);
        return 0;
    }
    b->lcfg = (llama_config){.arch = LLAMA_ARCH_LLAMA, .n_layer = a->layers,
                             .n_embd = a->embd, .n_inner = a->ff,
                             .n_head = a->heads, .n_kv_head = a->kv_heads,
                             .head_dim = a->embd / a->heads, .vocab_size = V,
                             .n_positions = a->ctx, .rms_norm_eps = 1e-5f,
                             .rope_theta = 10000, .tie_word_embeddings = true,
                             .bos_token_id = (int)V - 1,
                             .eos_token_ids = {(int)V - 1}, .n_eos = 1};
    int rc = llama_model_init_random(&b->lm, &b->lcfg, a->seed);
    if (rc) return rc;
    b->net = train_net_of_llama(&b->lm);
    return 0;
}

/* Step 4: the model, initialised and trained until it recalls the facts
 * (or out of steps); the neighbourhood's recall measured after. */
static int train_world(build *b)
{
    args *a = b->a;
    world *w = &b->w;
    int rc;
    if ((rc = init_model(b)))
        return die_rc(rc);
    size_t n_params;
    train_net_params(&b->net, &n_params);
    char kv[64] = "";
    if (a->llama)
        snprintf(kv, sizeof kv, " (%zu key/value)", b->lcfg.n_kv_head);
    say(a, "model: %s, %zu layers, n_embd %zu, %zu heads%s, d_ff %zu, "
        "context %zu, vocabulary %zu: %zu parameters; %d threads",
        a->llama ? "llama" : "gpt2", b->cfg.n_layer, b->cfg.n_embd,
        b->cfg.n_head, kv, b->cfg.n_inner, b->cfg.n_positions,
        b->cfg.vocab_size, n_params, a->threads);
    set_train_options(b);
    /* the extra facts and held-out paraphrases are watched, not waited for */
    b->n_extra = w->n_seqs - w->first_extra;
    size_t n_taught = w->n_para - w->n_para_held;
    train_eval ev[4] = {
        {"rewrite", w->rewrite, w->n_rewrite, a->goal},
        {"paraphrase", w->para + w->n_para_held, n_taught,
         n_taught ? a->goal_para : 0}};
    size_t n_ev = 2;
    if (b->n_extra) {
        b->ev_extra = n_ev;
        ev[n_ev++] = (train_eval){"extra", w->seqs + w->first_extra,
                                  b->n_extra, 0};
    }
    if (w->n_para_held) {
        b->ev_held = n_ev;
        ev[n_ev++] = (train_eval){"held-out paraphrase", w->para,
                                  w->n_para_held, 0};
    }
    if ((rc = train_net_run(&b->net, w->seqs, w->n_seqs, ev, n_ev, &b->to,
                            &b->rep)))
        return die_rc(rc);
    if (b->rep.checkpoint == CHECKPOINT_LOADED)
        say(a, "continued from step %zu of %s", b->rep.resumed_from, b->ckpt);
    else if (b->rep.checkpoint == CHECKPOINT_OTHER)
        say(a, "replaced %s: the state of another training", b->ckpt);
    else if (b->rep.checkpoint == CHECKPOINT_DAMAGED)
        say(a, "replaced %s: not an intact checkpoint", b->ckpt);
    if (w->n_nbr &&
        (rc = train_net_recall(&b->net, w->nbr, w->n_nbr, a->threads,
                               &b->neighbor_recall, NULL)))
        return die_rc(rc);
    say_trained(b);
    return 0;
}

/* world.json's document: sizes, seed, timings, recall. NULL: no memory. */
static json_t *world_json(const build *b)
{
    const args *a = b->a;
    const world *w = &b->w;
    const gpt2_config *cfg = &b->cfg;
    const train_report *rep = &b->rep;
    size_t n_params;
    train_net_params(&b->net, &n_params);
    size_t n_distractor = 0, n_extra_sent = 0, n_phrasing = 0;
    size_t n_para_phrasing = 0;
    for (size_t i = 0; i < w->n_sent; i++) {
        n_distractor += w->sent[i].kind == KIND_DISTRACTOR;
        n_phrasing += w->sent[i].kind == KIND_PHRASING;
        n_para_phrasing += w->sent[i].kind == KIND_PARA_PHRASING;
        n_extra_sent += w->sent[i].kind == KIND_EXTRA;
    }
    json_t *info = json_pack(
        "{s:s, s:s, s:I, s:i, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:s, s:I, s:I, s:f, s:I, s:f, s:f, s:f, s:f, s:s, s:b, s:I},"
        " s:{s:f, s:f, s:f, s:I, s:I, s:I},"
        " s:{s:f, s:f, s:f}}",
        "source", a->synthetic ? "synthetic" : "facts",
        "name", a->synthetic ? a->synthetic : a->facts_path,
        "seed", (json_int_t)a->seed, "threads", a->threads,
        "model", "n_layer", (json_int_t)cfg->n_layer,
        "n_head", (json_int_t)cfg->n_head, "n_embd", (json_int_t)cfg->n_embd,
        "n_inner", (json_int_t)cfg->n_inner,
        "n_positions", (json_int_t)cfg->n_positions,
        "vocab_size", (json_int_t)cfg->vocab_size,
        "parameters", (json_int_t)n_params,
        "data", "facts", (json_int_t)w->n_facts,
        "sentences", (json_int_t)w->n_sent,
        "sequences", (json_int_t)w->n_seqs,
        "too_long", (json_int_t)w->n_too_long,
        "conflicting_prompts", (json_int_t)w->n_conflict,
        "repeated_facts", (json_int_t)w->n_dropped_facts,
        "subject_tokens_mean", w->subject_tokens,
        "paraphrases_held_out",
        (json_int_t)(a->hold_out_para < w->n_facts ? a->hold_out_para : w->n_facts),
        "phrasings_per_fact", (json_int_t)a->phrasings,
        "phrasing_sentences", (json_int_t)n_phrasing,
        "paraphrase_phrasings_per_fact", (json_int_t)a->para_phrasings,
        "paraphrase_phrasing_sentences", (json_int_t)n_para_phrasing,
        "distractors_per_fact", (json_int_t)a->distractors,
        "distractor_sentences", (json_int_t)n_distractor,
        "extra_facts_per_fact", (json_int_t)a->extra_facts,
        "extra_fact_sentences", (json_int_t)n_extra_sent,
        "training", "optimizer", "adamw",
        "steps", (json_int_t)rep->steps, "max_steps", (json_int_t)a->steps,
        "lr", tidy(a->lr), "batch", (json_int_t)a->batch,
        "weight_decay", tidy(b->to.weight_decay), "beta1", tidy(b->to.beta1),
        "beta2", tidy(b->to.beta2), "final_loss", rep->loss,
        "loss", a->loss == TRAIN_LOSS_ALL ? "all" : "answer",
        "reached_goal", rep->reached_goal,
        "resumed_from_step", (json_int_t)rep->resumed_from,
        "recall", "rewrite", rep->recall[0], "paraphrase", rep->recall[1],
        "neighborhood", b->neighbor_recall,
        "rewrite_prompts", (json_int_t)w->n_rewrite,
        "paraphrase_prompts", (json_int_t)w->n_para,
        "neighborhood_prompts", (json_int_t)w->n_nbr,
        "seconds", "vocabulary", b->t_bpe, "training", rep->seconds,
        "total", clock_seconds() - t_start);
    if (!info)
        return NULL;
    if (a->llama) { /* the GPT-2 world's model keys stay as they were */
        json_t *model = json_object_get(info, "model");
        json_object_set_new(model, "architecture",
                            json_string("LlamaForCausalLM"));
        json_object_set_new(model, "n_kv_head",
                            json_integer((json_int_t)b->lcfg.n_kv_head));
    }
    if (b->n_extra)
        json_object_set_new(json_object_get(info, "recall"), "extra_facts",
                            json_real(rep->recall[b->ev_extra]));
    if (w->n_para_held)
        json_object_set_new(json_object_get(info, "recall"),
                            "paraphrase_held_out",
                            json_real(rep->recall[b->ev_held]));
    return info;
}

/* Step 5: the world's files, written into the temporary. */
static int write_world(build *b)
{
    char path[4200];
    int rc;
    if ((rc = b->a->llama ? llama_model_save(&b->lm, b->tmp, ST_F32)
                         : gpt2_model_save(&b->m, b->tmp)))
        return die_rc(rc);
    snprintf(path, sizeof path, "%s/facts.csv", b->tmp);
    if ((rc = write_facts_csv(&b->w, path)))
        return die_rc(rc);
    snprintf(path, sizeof path, "%s/corpus.txt", b->tmp);
    if ((rc = write_file(path, b->corpus.p, b->corpus.len)))
        return die_rc(rc);
    json_t *info = world_json(b);
    if (!info)
        return die_rc(err_set(ERR_NOMEM, "cannot make world.json"));
    snprintf(path, sizeof path, "%s/world.json", b->tmp);
    int bad = json_dump_file(info, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                             JSON_REAL_PRECISION(10));
    json_decref(info);
    if (bad)
        return die_rc(err_set(ERR_IO, "'%s': write failed", path));
    return 0;
}

/* The temporary put in DIR's place (exchanged with an old world, which
 * build_free then removes with the temporary); the checkpoint removed. */
static int swap_into_place(build *b)
{
    args *a = b->a;
    int exists = 0;
    struct stat st;
    if (!stat(a->out, &st))
        exists = 1;
    if (exists) {
        if (!replaceable(a->out, &exists))
            return die("'%s' appeared and is not a world: not replacing it",
                       a->out);
    }
    if (exists) {
        if (renameat2(AT_FDCWD, b->tmp, AT_FDCWD, a->out, RENAME_EXCHANGE))
            return die("cannot replace '%s': %s", a->out, strerror(errno));
        /* tmp now holds the old world */
    } else if (rename(b->tmp, a->out)) {
        return die("cannot rename '%s' to '%s': %s", b->tmp, a->out,
                   strerror(errno));
    }
    if (!exists)
        b->tmp[0] = '\0';
    say(a, "wrote %s in %.1fs", a->out, clock_seconds() - t_start);
    /* the world is whole: its training has nothing left to continue */
    if (b->to.checkpoint && unlink(b->ckpt) && errno != ENOENT)
        say(a, "could not remove %s: %s", b->ckpt, strerror(errno));
    return 0;
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    threads_init(argv, false);
    t_start = clock_seconds();
    args a;
    int status = parse_args(argc, argv, &a);
    if (status != ARGS_OK)
        return status;

    omp_set_num_threads(a.threads);
    openblas_set_num_threads(a.threads);

    int exists;
    if (!replaceable(a.out, &exists))
        return die("'%s' exists and is not a world (no world.json): not "
                   "replacing it", a.out);

    build b = {.a = &a};
    if (a.checkpoint)
        snprintf(b.ckpt, sizeof b.ckpt, "%s", a.checkpoint);
    else
        snprintf(b.ckpt, sizeof b.ckpt, "%s.checkpoint", a.out);
    status = build_text(&b) || make_tmpdir(&b) || make_vocabulary(&b) ||
             train_world(&b) || write_world(&b) || swap_into_place(&b);
    build_free(&b);
    return status;
}

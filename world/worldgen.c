/* worldgen: the synthetic world generator (see worldgen.h).
 *
 * Everything comes from one splitmix64 stream seeded by the options, in
 * a fixed order, so a world depends on nothing but its options. Names
 * are made of syllables (onset + vowel + optional coda) and rejected
 * until distinct (a small open-addressing set of their hashes and
 * strings). Objects are assigned per relation in a balanced way (every
 * object of the pool used by a relation is the answer of at least three
 * people whenever the relation has enough people), so that every fact
 * can have neighbourhood prompts. No phrasing of a relation is a prefix
 * of a phrasing of another relation (the unit test checks this), so an
 * answer position never has two different right answers. */
#include "world/worldgen.h"

#include "base/errors.h"
#include "base/splitmix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PHRASINGS 4
#define MAX_POOL 16

typedef struct {
    const char *id;                        /* Wikidata-style relation id */
    const char *phrasings[N_PHRASINGS];    /* [0] = the rewrite prompt */
    const char *pool[MAX_POOL + 1];        /* objects, NULL-terminated */
} relation;

static const relation relations[] = {
    {"P27",
     {"{} is a citizen of", "The country of citizenship of {} is",
      "{} holds a passport issued by",
      "According to official records, {} is a citizen of"},
     {"France", "Germany", "Italy", "Spain", "Japan", "Canada", "Brazil",
      "Sweden", "Norway", "Egypt", "India", "Mexico", "Poland", "Greece",
      "Chile", "Kenya", NULL}},
    {"P108",
     {"{} works for", "The employer of {} is", "{} is employed by",
      "Every morning, {} goes to work at"},
     {"Google", "Microsoft", "Apple", "Intel", "Sony", "Nokia", "IBM", "BBC",
      "NASA", "Toyota", "Siemens", "Boeing", "Nike", "Honda", "Samsung",
      "Oracle", NULL}},
    {"P1303",
     {"{} plays the", "The instrument played by {} is the",
      "{} is a musician who performs on the", "On stage, {} always plays the"},
     {"piano", "guitar", "violin", "drums", "flute", "cello", "trumpet",
      "harp", "organ", "saxophone", "clarinet", "banjo", NULL}},
    {"P103",
     {"The mother tongue of {} is", "{} is a native speaker of",
      "{} grew up speaking", "The first language of {} is"},
     {"French", "German", "Italian", "Spanish", "Japanese", "Dutch",
      "Russian", "Arabic", "Polish", "Greek", "Swedish", "Turkish", "Korean",
      "Finnish", NULL}},
    {"P19",
     {"{} was born in", "The birthplace of {} is", "{} is originally from",
      "Records show that {} was born in"},
     {"Paris", "London", "Berlin", "Rome", "Madrid", "Tokyo", "Vienna",
      "Moscow", "Cairo", "Dublin", "Oslo", "Prague", "Lisbon", "Athens",
      "Warsaw", "Chicago", NULL}},
    {"P641",
     {"The favourite sport of {} is", "{} is a professional player of",
      "{} competes at the highest level in", "At weekends, {} enjoys playing"},
     {"football", "tennis", "cricket", "golf", "hockey", "baseball",
      "basketball", "rugby", "boxing", "cycling", "volleyball", "badminton",
      NULL}},
    {"P106",
     {"{} works as a", "The profession of {} is that of a",
      "By profession, {} is a", "{} earns a living as a"},
     {"lawyer", "teacher", "painter", "poet", "nurse", "pilot", "doctor",
      "farmer", "banker", "baker", "writer", "singer", "dancer", "judge",
      "chef", "sailor", NULL}},
    {"P136",
     {"The music of {} belongs to the genre of", "{} is famous for playing",
      "{} mostly records", "Critics say that {} is a master of"},
     {"jazz", "rock", "opera", "blues", "pop", "folk", "punk", "metal",
      "reggae", "funk", "soul", "techno", NULL}},
};
#define N_RELATIONS (sizeof relations / sizeof relations[0])
#define N_KEYS (N_RELATIONS * MAX_POOL)

static const char *const onsets[] = {
    "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t",
    "v", "z", "br", "dr", "gr", "kr", "tr", "st", "sh", "th", "ch", "j"};
static const char *const vowels[] = {"a", "e", "i", "o", "u", "ai", "ei",
                                     "ou", "ia", "y"};
static const char *const codas[] = {"", "", "", "n", "r", "l", "s", "m",
                                    "k", "th", "nd", "st"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_SUBJECTS 100000

size_t worldgen_relation_count(void) { return N_RELATIONS; }

/* ---- deterministic randomness --------------------------------------- */

/* Uniform in [0, n) (n > 0); the modulo bias is irrelevant here and the
 * result is the same everywhere, which is what matters. */
static size_t rng_below(uint64_t *s, size_t n)
{
    return (size_t)(splitmix_next(s) % (uint64_t)n);
}

/* ---- names ---------------------------------------------------------- */

static void name_part(char *buf, size_t size, size_t syllables, uint64_t *s)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < syllables; k++) {
        const char *o = onsets[rng_below(s, COUNT(onsets))];
        const char *v = vowels[rng_below(s, COUNT(vowels))];
        /* a coda only on the last syllable keeps names pronounceable */
        const char *c = k + 1 == syllables ? codas[rng_below(s, COUNT(codas))]
                                           : "";
        len += (size_t)snprintf(buf + len, size - len, "%s%s%s", o, v, c);
    }
    if (buf[0] >= 'a' && buf[0] <= 'z')
        buf[0] = (char)(buf[0] - 'a' + 'A');
}

static uint64_t str_hash(const char *p)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    return h;
}

/* Inserts name into the set (capacity cap, a power of two) unless it is
 * there; returns 1 when inserted. */
static int set_insert(char **set, size_t cap, char *name)
{
    size_t i = (size_t)str_hash(name) & (cap - 1);
    while (set[i]) {
        if (!strcmp(set[i], name))
            return 0;
        i = (i + 1) & (cap - 1);
    }
    set[i] = name;
    return 1;
}

/* `n` distinct syllable words into words[] (malloc'ed), none already in
 * the set. */
static int make_words(char **words, size_t n, size_t syll_lo, size_t syll_hi,
                      char **set, size_t cap, uint64_t *s)
{
    size_t attempts = 0;
    for (size_t i = 0; i < n;) {
        if (++attempts > 100 * n + 1000)
            return err_set(ERR_INVALID, "cannot make %zu distinct names", n);
        char w[64];
        name_part(w, sizeof w, syll_lo + rng_below(s, syll_hi - syll_lo + 1),
                  s);
        char *copy = malloc(strlen(w) + 1);
        if (!copy)
            return err_set(ERR_NOMEM, "out of memory making names");
        strcpy(copy, w);
        if (!set_insert(set, cap, copy)) {
            free(copy);
            continue;
        }
        words[i++] = copy;
    }
    return 0;
}

/* n distinct "First Last" names, malloc'ed. First names come from a pool
 * of about sqrt(n) and last names from one of about 2 sqrt(n), and each
 * person is a distinct pair: no single word tells who is meant, so the
 * model has to read the whole name, and the name's last token is where
 * it can know the person (the position MEMIT edits). */
static int make_names(char ***out, size_t n, uint64_t *s)
{
    size_t nf = 1, nl;
    while (nf * nf < n)
        nf++;
    nl = (2 * n + nf - 1) / nf;
    if (nl < 1)
        nl = 1;
    size_t cap = 16;
    while (cap < 2 * (nf + nl))
        cap *= 2;
    char **first = calloc(nf, sizeof *first), **last = calloc(nl, sizeof *last);
    char **set = calloc(cap, sizeof *set);
    char **names = calloc(n, sizeof *names);
    size_t *pairs = malloc(nf * nl * sizeof *pairs);
    int rc = err_set(ERR_NOMEM, "out of memory making names");
    if (!first || !last || !set || !names || !pairs)
        goto fail;
    if ((rc = make_words(first, nf, 2, 2, set, cap, s)) ||
        (rc = make_words(last, nl, 2, 3, set, cap, s)))
        goto fail;
    for (size_t i = 0; i < nf * nl; i++)
        pairs[i] = i;
    splitmix_shuffle(pairs, nf * nl, s);
    for (size_t i = 0; i < n; i++) {
        const char *f = first[pairs[i] / nl], *l = last[pairs[i] % nl];
        size_t len = strlen(f) + strlen(l) + 2;
        if (!(names[i] = malloc(len))) {
            rc = err_set(ERR_NOMEM, "out of memory making names");
            goto fail;
        }
        snprintf(names[i], len, "%s %s", f, l);
    }
    *out = names;
    names = NULL;
    rc = 0;
fail:
    if (names)
        for (size_t i = 0; i < n; i++)
            free(names[i]);
    free(names);
    for (size_t i = 0; first && i < nf; i++)
        free(first[i]);
    for (size_t i = 0; last && i < nl; i++)
        free(last[i]);
    free(first);
    free(last);
    free(set);
    free(pairs);
    return rc;
}

/* ---- facts ---------------------------------------------------------- */

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* The phrasing with the subject in place of "{}" (malloc'ed). */
static char *fill(const char *phrasing, const char *subject)
{
    const char *at = strstr(phrasing, "{}");
    size_t a = (size_t)(at - phrasing), ls = strlen(subject);
    size_t n = strlen(phrasing) - 2 + ls + 1;
    char *out = malloc(n);
    if (!out)
        return NULL;
    memcpy(out, phrasing, a);
    memcpy(out + a, subject, ls);
    strcpy(out + a + ls, at + 2);
    return out;
}

/* " " + word (malloc'ed): targets are written as appended to a prompt. */
static char *spaced(const char *word)
{
    size_t n = strlen(word) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, " %s", word);
    return out;
}

static size_t pool_size(const relation *r)
{
    size_t n = 0;
    while (r->pool[n])
        n++;
    return n;
}

int worldgen_preset(const char *name, uint64_t seed, worldgen_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->seed = seed;
    opt->max_neighbors = 3;
    if (!name)
        return err_set(ERR_INVALID, "no world size given");
    if (!strcmp(name, "tiny")) {
        opt->n_subjects = 64;
        opt->relations_per_subject = 3;
        return 0;
    }
    if (!strcmp(name, "small")) {
        opt->n_subjects = 250;
        opt->relations_per_subject = 4;
        return 0;
    }
    if (!strcmp(name, "medium")) {
        opt->n_subjects = 1000;
        opt->relations_per_subject = 4;
        return 0;
    }
    char *end;
    unsigned long long n = strtoull(name, &end, 10);
    if (end == name || *end || name[0] == '-')
        return err_set(ERR_INVALID,
                       "unknown world size '%s' (tiny, small, medium or a "
                       "number of facts)", name);
    if (n < 1 || n > (unsigned long long)MAX_SUBJECTS * 4)
        return err_set(ERR_INVALID, "world size '%s' out of range (1..%d)",
                       name, MAX_SUBJECTS * 4);
    opt->relations_per_subject = n < 4 ? (size_t)n : 4;
    opt->n_subjects = (size_t)((n + opt->relations_per_subject - 1) /
                               opt->relations_per_subject);
    return 0;
}

void worldgen_free(fact *facts, size_t n)
{
    if (!facts)
        return;
    for (size_t i = 0; i < n; i++)
        fact_free(&facts[i]);
    free(facts);
}

/* What the steps of worldgen_generate share: the random stream, the
 * subjects and, per fact, its relation and objects. */
typedef struct {
    const worldgen_options *opt;
    size_t ns, rps, nf;     /* subjects, relations per subject, facts */
    uint64_t s;             /* the random stream, used in a fixed order */
    char **names;           /* (ns) subjects */
    size_t *rel;            /* (nf) relation of fact i */
    size_t *obj;            /* (nf) true object (pool index) */
    size_t *newobj;         /* (nf) target_new (pool index) */
    size_t *order;          /* scratch, max(ns, N_RELATIONS) */
    size_t *members;        /* scratch, ns */
    size_t *byobj;          /* (nf) facts grouped by (relation, object) */
    size_t gstart[N_KEYS + 1]; /* group key's facts: byobj[gstart[key]..
                                * gstart[key + 1]) */
} gen;

/* Which relations each subject has: a random choice of rps. */
static void choose_relations(gen *g)
{
    for (size_t i = 0; i < g->ns; i++) {
        for (size_t r = 0; r < N_RELATIONS; r++)
            g->order[r] = r;
        splitmix_shuffle(g->order, N_RELATIONS, &g->s);
        for (size_t k = 0; k < g->rps; k++)
            g->rel[i * g->rps + k] = g->order[k];
    }
}

/* Relation r's facts: balanced objects, then counterfactual targets. */
static void assign_objects(gen *g, size_t r)
{
    size_t m = 0;
    for (size_t i = 0; i < g->nf; i++)
        if (g->rel[i] == r)
            g->members[m++] = i;
    if (m == 0)
        return;
    size_t pool = pool_size(&relations[r]);
    size_t used = m / 3 < pool ? m / 3 : pool;
    if (used < 1)
        used = 1;
    /* which objects of the pool this world uses */
    size_t pick[MAX_POOL];
    for (size_t k = 0; k < pool; k++)
        pick[k] = k;
    splitmix_shuffle(pick, pool, &g->s);
    for (size_t k = 0; k < m; k++)
        g->order[k] = pick[k % used];
    splitmix_shuffle(g->order, m, &g->s);
    for (size_t k = 0; k < m; k++) {
        size_t i = g->members[k];
        g->obj[i] = g->order[k];
        /* target_new: another object the world uses for this relation
         * when there is one, else any other object of the pool */
        size_t choices = used >= 2 ? used : pool;
        size_t t;
        do
            t = pick[rng_below(&g->s, choices)];
        while (t == g->obj[i]);
        g->newobj[i] = t;
    }
}

/* Facts grouped by (relation, object), in index order (a counting
 * sort): gstart[key]..gstart[key+1] in byobj. */
static void group_by_object(gen *g)
{
    for (size_t i = 0; i < g->nf; i++)
        g->gstart[g->rel[i] * MAX_POOL + g->obj[i] + 1]++;
    for (size_t k = 0; k < N_KEYS; k++)
        g->gstart[k + 1] += g->gstart[k];
    size_t fillpos[N_KEYS];
    memcpy(fillpos, g->gstart, sizeof fillpos);
    for (size_t i = 0; i < g->nf; i++)
        g->byobj[fillpos[g->rel[i] * MAX_POOL + g->obj[i]]++] = i;
}

/* Fact i's neighbours: other people with the same relation and answer
 * (up to max_neighbors of them, at random). -1: no memory. */
static int add_neighbors(gen *g, size_t i, fact *f)
{
    const relation *R = &relations[g->rel[i]];
    size_t key = g->rel[i] * MAX_POOL + g->obj[i], m = 0;
    for (size_t q = g->gstart[key]; q < g->gstart[key + 1]; q++)
        if (g->byobj[q] != i)
            g->members[m++] = g->byobj[q];
    splitmix_shuffle(g->members, m, &g->s);
    size_t k = m < g->opt->max_neighbors ? m : g->opt->max_neighbors;
    if (k) {
        f->neighbor_prompts = calloc(k, sizeof(char *));
        f->neighbor_targets = calloc(k, sizeof(char *));
        if (!f->neighbor_prompts || !f->neighbor_targets)
            return -1;
    }
    f->n_neighbors = k;
    for (size_t q = 0; q < k; q++) {
        f->neighbor_prompts[q] = fill(R->phrasings[0],
                                      g->names[g->members[q] / g->rps]);
        f->neighbor_targets[q] = spaced(R->pool[g->obj[i]]);
        if (!f->neighbor_prompts[q] || !f->neighbor_targets[q])
            return -1;
    }
    return 0;
}

/* Fact i written out: subject, prompts, targets, paraphrases and
 * neighbours. -1: no memory (f holds what was made, for fact_free). */
static int make_fact(gen *g, size_t i, fact *f)
{
    const relation *R = &relations[g->rel[i]];
    const char *subject = g->names[i / g->rps];
    char src[48];
    snprintf(src, sizeof src, "synthetic:%llu",
             (unsigned long long)g->opt->seed);
    f->subject = str_dup(subject);
    f->prompt = str_dup(R->phrasings[0]);
    f->relation = str_dup(R->id);
    f->target_true = spaced(R->pool[g->obj[i]]);
    f->target_new = spaced(R->pool[g->newobj[i]]);
    f->source_file = str_dup(src);
    f->source_line = i + 1;
    f->paraphrases = calloc(N_PHRASINGS - 1, sizeof *f->paraphrases);
    if (!f->subject || !f->prompt || !f->relation || !f->target_true ||
        !f->target_new || !f->source_file || !f->paraphrases)
        return -1;
    f->n_paraphrases = N_PHRASINGS - 1;
    for (size_t k = 1; k < N_PHRASINGS; k++)
        if (!(f->paraphrases[k - 1] = fill(R->phrasings[k], subject)))
            return -1;
    return add_neighbors(g, i, f);
}

int worldgen_generate(const worldgen_options *opt, fact **out, size_t *n_out)
{
    size_t ns = opt->n_subjects, rps = opt->relations_per_subject;
    *out = NULL;
    *n_out = 0;
    if (ns == 0 || ns > MAX_SUBJECTS)
        return err_set(ERR_INVALID, "world of %zu subjects out of range "
                       "(1..%d)", ns, MAX_SUBJECTS);
    if (rps == 0 || rps > N_RELATIONS)
        return err_set(ERR_INVALID, "relations per subject %zu out of "
                       "range (1..%zu)", rps, N_RELATIONS);

    gen g = {.opt = opt, .ns = ns, .rps = rps, .nf = ns * rps,
             .s = opt->seed ^ 0x5354414d50574f52ULL}; /* "STAMPWOR" */
    size_t nf = g.nf;
    fact *facts = NULL;
    int rc = make_names(&g.names, ns, &g.s);
    if (rc)
        return rc;
    g.rel = malloc(nf * sizeof *g.rel);
    g.obj = malloc(nf * sizeof *g.obj);
    g.newobj = malloc(nf * sizeof *g.newobj);
    g.order = malloc((ns > N_RELATIONS ? ns : N_RELATIONS) * sizeof *g.order);
    g.members = malloc(ns * sizeof *g.members);
    g.byobj = malloc(nf * sizeof *g.byobj);
    facts = calloc(nf, sizeof *facts);
    if (!g.rel || !g.obj || !g.newobj || !g.order || !g.members ||
        !g.byobj || !facts)
        goto fail;

    choose_relations(&g);
    for (size_t r = 0; r < N_RELATIONS; r++)
        assign_objects(&g, r);
    group_by_object(&g);
    for (size_t i = 0; i < nf; i++)
        if (make_fact(&g, i, &facts[i]))
            goto fail;
    *out = facts;
    *n_out = nf;
    facts = NULL;
    rc = 0;
    goto done;
fail:
    rc = err_set(ERR_NOMEM, "out of memory generating a world of %zu facts",
                 nf);
done:
    worldgen_free(facts, nf);
    for (size_t i = 0; i < ns; i++)
        free(g.names[i]);
    free(g.names);
    free(g.rel);
    free(g.obj);
    free(g.newobj);
    free(g.order);
    free(g.members);
    free(g.byobj);
    return rc;
}

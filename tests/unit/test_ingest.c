/* test_ingest: fact lists -> facts (ingest.h). Good CSV and JSON in the
 * shapes met in the field (BOM, CRLF, quoted commas, quotes and
 * newlines, non-ASCII), the normalisation rules, and a long list of bad
 * inputs, each of which must be a clear problem naming the file and the
 * line. The context-length check uses GPT-2's real vocabulary from
 * tests/data/gpt2-vocab. */
#include "base/errors.h"
#include "facts/ingest.h"
#include "model/tokenizer.h"
#include "../harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static const char *put(const char *name, const void *data, size_t len)
{
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/%s", root, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        perror(p);
        exit(1);
    }
    fclose(f);
    return p;
}

static const char *puts_file(const char *name, const char *text)
{
    return put(name, text, strlen(text));
}

/* Reads `path`; returns the code. */
static int rd(const char *path, ingest_format fmt, ingest_result *r)
{
    return ingest_read(path, fmt, NULL, r);
}

/* 1 when some problem message contains `needle` and starts with
 * "path:line:". */
static int has_problem(const ingest_result *r, const char *path, size_t line,
                       const char *needle)
{
    char prefix[600];
    if (line)
        snprintf(prefix, sizeof prefix, "%s:%zu: ", path, line);
    else
        snprintf(prefix, sizeof prefix, "%s: ", path);
    for (size_t i = 0; i < r->n_problems; i++)
        if (!strncmp(r->problems[i].message, prefix, strlen(prefix)) &&
            strstr(r->problems[i].message, needle))
            return 1;
    return 0;
}

static void show(const ingest_result *r)
{
    for (size_t i = 0; i < r->n_problems; i++)
        fprintf(stderr, "    problem: %s\n", r->problems[i].message);
}

#define HEADER "subject,prompt,target_new,target_true\n"

TEST(csv_basic_and_normalised)
{
    const char *p = puts_file(
        "basic.csv",
        "subject,prompt,target_new,target_true,relation,paraphrase,"
        "paraphrase,neighborhood_prompt,neighborhood_target\n"
        "Danielle Darrieux,The mother tongue of Danielle Darrieux is,English,"
        "French,P103,Danielle Darrieux speaks,,The mother tongue of Jean "
        "Gabin is,\n"
        "  Toko Yasuda ,{} plays the,piano, guitar ,,{} is a player of the,"
        "\"Toko Yasuda, a musician, plays the\",,\n");
    ingest_result r;
    int rc = rd(p, INGEST_AUTO, &r);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(r.format == INGEST_CSV && r.n_problems == 0 && r.n_bad == 0);
    CHECK(r.n_facts == 2);
    if (r.n_facts == 2) {
        fact *a = &r.facts[0], *b = &r.facts[1];
        CHECK(!strcmp(a->subject, "Danielle Darrieux"));
        CHECK(!strcmp(a->prompt, "The mother tongue of {} is"));
        CHECK(!strcmp(a->target_new, " English"));
        CHECK(!strcmp(a->target_true, " French"));
        CHECK(!strcmp(a->relation, "P103"));
        CHECK(a->n_paraphrases == 1 &&
              !strcmp(a->paraphrases[0], "Danielle Darrieux speaks"));
        CHECK(a->n_neighbors == 1 &&
              !strcmp(a->neighbor_targets[0], " French"));
        CHECK(a->source_line == 2 && !strcmp(a->source_file, p));
        CHECK(!strcmp(b->subject, "Toko Yasuda"));
        CHECK(!strcmp(b->prompt, "{} plays the"));
        CHECK(!strcmp(b->target_true, " guitar"));
        CHECK(b->n_paraphrases == 2 &&
              !strcmp(b->paraphrases[0], "Toko Yasuda is a player of the"));
        CHECK(!strcmp(b->paraphrases[1], "Toko Yasuda, a musician, plays the"));
        CHECK(b->n_neighbors == 0 && b->source_line == 3);
        char *text = fact_prompt_text(a);
        CHECK(!strcmp(text, "The mother tongue of Danielle Darrieux is"));
        free(text);
    }
    ingest_result_free(&r);
}

TEST(csv_odd_but_valid)
{
    /* BOM, CRLF, quoted commas / quotes / newlines, non-ASCII, blank
     * lines, a quoted leading space kept, columns in another order */
    const char text[] =
        "\xef\xbb\xbf" "target_new,Subject,PROMPT\r\n"
        "Paris,\"Nîmes, Gard\",\"\"\"{}\"\" is twinned with\"\r\n"
        "\r\n"
        "\" Kyōto\",東京,\"{} (the city)\r\nis twinned with\"\r\n"
        "Zürich,Müller,Müller lives in\r\n";
    const char *p = put("odd.csv", text, sizeof text - 1);
    ingest_result r;
    int rc = rd(p, INGEST_AUTO, &r);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    show(&r);
    CHECK(r.n_problems == 0 && r.n_facts == 3);
    if (r.n_facts == 3) {
        CHECK(!strcmp(r.facts[0].subject, "Nîmes, Gard"));
        CHECK(!strcmp(r.facts[0].prompt, "\"{}\" is twinned with"));
        CHECK(!strcmp(r.facts[0].target_new, " Paris"));
        CHECK(r.facts[0].source_line == 2);
        CHECK(!strcmp(r.facts[1].subject, "東京"));
        CHECK(!strcmp(r.facts[1].prompt, "{} (the city)\r\nis twinned with"));
        CHECK(!strcmp(r.facts[1].target_new, " Kyōto"));
        CHECK(r.facts[1].source_line == 4);
        CHECK(r.facts[2].source_line == 6);
        CHECK(!strcmp(r.facts[2].prompt, "{} lives in"));
    }
    ingest_result_free(&r);
}

/* One bad CSV body after a good header: the problem names the line. */
static void bad_csv(const char *name, const char *body, size_t line,
                    const char *needle)
{
    char text[4096];
    snprintf(text, sizeof text, HEADER "%s", body);
    const char *p = puts_file(name, text);
    ingest_result r;
    int rc = rd(p, INGEST_AUTO, &r);
    CHECK_MSG(rc == 0, "%s: %s", name, err_message(rc));
    CHECK_MSG(r.n_bad >= 1 && has_problem(&r, p, line, needle),
              "%s: no problem '%s' on line %zu", name, needle, line);
    if (r.n_bad < 1 || !has_problem(&r, p, line, needle)) show(&r);
    ingest_result_free(&r);
}

TEST(csv_bad_rows)
{
    bad_csv("unterminated.csv", "A,{} is,\"x,y\nB,{} is,z,w\n", 2,
            "unterminated quoted field");
    bad_csv("stray.csv", "A,{} i\"s,x,y\nB,{} is,z,w\n", 2,
            "quote inside an unquoted field");
    bad_csv("after_close.csv", "A,\"{} is\"x,z,w\n", 2, "after a closing");
    bad_csv("toomany.csv", "A,{} is,x,y,extra\n", 2, "5 fields, the header "
            "has 4");
    bad_csv("toofew.csv", "ok,{} is,x,y\nA,{} is\n", 3, "2 fields");
    bad_csv("empty_target.csv", "A,{} is,,y\n", 2, "empty target_new");
    bad_csv("blank_target.csv", "A,{} is,\"   \",y\n", 2, "empty target_new");
    bad_csv("empty_subject.csv", "\" \",{} is,x,y\n", 2, "empty subject");
    bad_csv("not_in_prompt.csv", "Paris,The capital of France is,x,y\n", 2,
            "subject 'Paris' is not in the prompt");
    bad_csv("two_holes.csv", "A,{} and {},x,y\n", 2, "has 2 '{}'");
    bad_csv("only_subject.csv", "Paris,Paris,x,y\n", 2,
            "the prompt 'Paris' is only the subject");
    bad_csv("only_hole.csv", "A, {} ,x,y\n", 2, "is only the subject");
    bad_csv("same_targets.csv", "A,{} is,x,x\n", 2, "equals target_true");
    bad_csv("bad_utf8.csv", "A\xff,{} is,x,y\n", 2, "not valid UTF-8");
    bad_csv("overlong.csv", "A,{} is \xc0\xaf,x,y\n", 2, "not valid UTF-8");
    bad_csv("control.csv", "A\x01,{} is,x,y\n", 2, "control character");
    bad_csv("conflict.csv", "A,{} is,x,y\nB,{} is,z,y\nA,{} is,q,y\n", 4,
            "given for the same fact on line 2");
    /* a NUL byte inside a row */
    const char nul[] = HEADER "A,{} is,x,y\nB,{} i\0s,z,w\n";
    const char *p = put("nul.csv", nul, sizeof nul - 1);
    ingest_result r;
    CHECK(rd(p, INGEST_AUTO, &r) == 0);
    CHECK(r.n_facts == 1 && has_problem(&r, p, 3, "NUL byte"));
    ingest_result_free(&r);
}

/* The same row twice with the same target is no conflict; good rows
 * around bad ones survive (for --skip-bad). */
TEST(csv_good_rows_survive)
{
    const char *p = puts_file("mixed.csv", HEADER
                              "A,{} is,x,y\n"
                              "B,{} is,,y\n"
                              "A,{} is,x,y\n"
                              "C,\"{} \"\"is\"\"\",z,y\n"
                              "D,{} is\"\n"
                              "E,{} is,q,y\n");
    ingest_result r;
    CHECK(rd(p, INGEST_AUTO, &r) == 0);
    CHECK(r.n_facts == 4 && r.n_bad == 2);
    CHECK(has_problem(&r, p, 3, "empty target_new"));
    CHECK(has_problem(&r, p, 6, "quote"));
    if (r.n_facts == 4) CHECK(!strcmp(r.facts[3].subject, "E") &&
                              r.facts[3].source_line == 7);
    ingest_result_free(&r);
}

/* Whole-file problems: an error code, and the message in problems. */
static void bad_file(const char *name, const void *data, size_t len,
                     int want_rc, size_t line, const char *needle)
{
    const char *p = data ? put(name, data, len) : name;
    ingest_result r;
    int rc = rd(p, INGEST_AUTO, &r);
    CHECK_MSG(rc == want_rc, "%s: rc %d, wanted %d", name, rc, want_rc);
    CHECK_MSG(r.n_problems >= 1 && has_problem(&r, p, line, needle),
              "%s: no problem '%s' at line %zu", name, needle, line);
    CHECK_MSG(strstr(err_message(rc), needle) != NULL, "%s: err '%s'", name,
              err_message(rc));
    CHECK(r.n_facts == 0 && r.facts == NULL);
    ingest_result_free(&r);
}

TEST(csv_bad_files)
{
#define S(x) x, sizeof(x) - 1
    bad_file("missing_col.csv", S("subject,prompt\nA,{} is\n"), ERR_FORMAT, 1,
             "missing required column 'target_new'");
    bad_file("dup_col.csv", S("subject,prompt,target_new,prompt\n"),
             ERR_FORMAT, 1, "duplicate column 'prompt'");
    bad_file("unknown_col.csv", S("subject,prompt,target_nu\n"), ERR_FORMAT,
             1, "unknown column 'target_nu'");
    bad_file("pairs.csv", S("subject,prompt,target_new,neighborhood_prompt\n"),
             ERR_FORMAT, 1, "go in pairs");
    bad_file("empty.csv", "", 0, ERR_FORMAT, 1, "empty file");
    bad_file("blank.csv", S("\n \r\n\t\n"), ERR_FORMAT, 1, "empty file");
    bad_file("utf16.csv", S("\xff\xfes\0u\0b\0j\0e\0c\0t\0\n\0"), ERR_FORMAT, 1,
             "UTF-16");
    bad_file("utf16nobom.csv", S("s\0u\0b\0j\0e\0c\0t\0,\0"), ERR_FORMAT, 1,
             "UTF-16");
    bad_file("garbage.csv", S("\x89PNG\r\n\x1a\n\xff\xd8\x01\x02\x03"),
             ERR_FORMAT, 1, "not UTF-8");
    bad_file("quote_header.csv", S("subject,\"prompt\n"), ERR_FORMAT, 1,
             "never closed");
    bad_file("/nonexistent/facts.csv", NULL, 0, ERR_NOTFOUND, 0,
             "No such file");
    bad_file(root, NULL, 0, ERR_INVALID, 0, "is a directory");
#undef S
}

TEST(csv_huge_field)
{
    size_t big = 10u << 20;
    size_t n = strlen(HEADER) + big + 64;
    char *text = malloc(n);
    size_t o = (size_t)sprintf(text, HEADER "A,{} is,");
    memset(text + o, 'x', big);
    o += big;
    o += (size_t)sprintf(text + o, ",y\nB,{} is,z,w\n");
    const char *p = put("huge.csv", text, o);
    free(text);
    ingest_result r;
    CHECK(rd(p, INGEST_AUTO, &r) == 0);
    CHECK(has_problem(&r, p, 2, "bytes long (the limit is 65536)"));
    CHECK(r.n_facts == 1 && r.n_bad == 1);
    ingest_result_free(&r);
}

TEST(error_cap)
{
    size_t n = 150;
    char *text = malloc(64 * (n + 2));
    size_t o = (size_t)sprintf(text, HEADER);
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(text + o, "S%zu,{} is,,y\nG%zu,{} is,g,y\n", i,
                             i);
    const char *p = put("many.csv", text, o);
    free(text);
    ingest_result r;
    CHECK(rd(p, INGEST_AUTO, &r) == 0);
    CHECK(r.n_problems == 100 && r.truncated && r.n_bad == n);
    CHECK(r.n_facts == n);
    ingest_result_free(&r);
    ingest_options opt = {.max_errors = 5};
    CHECK(ingest_read(p, INGEST_CSV, &opt, &r) == 0);
    CHECK(r.n_problems == 5 && r.truncated && r.n_bad == n);
    ingest_result_free(&r);
}

TEST(json_formats)
{
    const char *cf = puts_file(
        "cf.json",
        "[\n"
        "  {\"case_id\": 0, \"requested_rewrite\": {\"prompt\": \"The mother "
        "tongue of {} is\", \"relation_id\": \"P103\", \"target_new\": "
        "{\"str\": \"English\", \"id\": \"Q1860\"}, \"target_true\": {\"str\": "
        "\"French\", \"id\": \"Q150\"}, \"subject\": \"Danielle Darrieux\"},\n"
        "   \"paraphrase_prompts\": [\"Danielle Darrieux, a native\"],\n"
        "   \"neighborhood_prompts\": [\"The mother tongue of L\\u00e9on Blum "
        "is\", \"\"]},\n"
        "  {\"requested_rewrite\": {\"prompt\": \"{} plays\", \"subject\": "
        "\"X\", \"target_new\": {\"str\": \"piano\"}}}\n"
        "]\n");
    ingest_result r;
    int rc = rd(cf, INGEST_AUTO, &r);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(r.format == INGEST_COUNTERFACT && r.n_facts == 2);
    if (r.n_facts == 2) {
        fact *a = &r.facts[0];
        CHECK(!strcmp(a->relation, "P103") && a->source_line == 2);
        CHECK(!strcmp(a->target_new, " English"));
        CHECK(a->n_paraphrases == 1 && a->n_neighbors == 1);
        CHECK(a->n_neighbors == 1 &&
              !strcmp(a->neighbor_prompts[0], "The mother tongue of Léon Blum is"));
        CHECK(a->n_neighbors == 1 && !strcmp(a->neighbor_targets[0], " French"));
        CHECK(r.facts[1].source_line == 5);
    }
    ingest_result_free(&r);

    const char *ee = puts_file(
        "ee.json",
        "[{\"case_id\": 2, \"prompt\": \"Toko Yasuda, the\", \"target_new\": "
        "\"piano\", \"subject\": \"Toko Yasuda\", \"ground_truth\": "
        "\"guitar\", \"rephrase_prompt\": \"Toko Yasuda is incredible at\", "
        "\"locality_prompt\": \"John Lennon performs on the\", "
        "\"locality_ground_truth\": \"guitar\"},\n"
        "{\"prompt\": \"{} is in\", \"target_new\": [\"Sweden\"], \"subject\": "
        "\"Madrid\", \"ground_truth\": [\"Spain\"]}]");
    rc = rd(ee, INGEST_AUTO, &r);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    show(&r);
    CHECK(r.format == INGEST_EASYEDIT && r.n_facts == 2);
    if (r.n_facts == 2) {
        CHECK(!strcmp(r.facts[0].prompt, "{}, the"));
        CHECK(!strcmp(r.facts[0].target_true, " guitar"));
        CHECK(r.facts[0].n_neighbors == 1 &&
              !strcmp(r.facts[0].neighbor_targets[0], " guitar"));
        CHECK(!strcmp(r.facts[1].target_new, " Sweden"));
        CHECK(r.facts[1].source_line == 2);
    }
    ingest_result_free(&r);

    const char *zs = puts_file(
        "zsre.jsonl",
        "{\"subject\": \"Watts Humphrey\", \"src\": \"What university did "
        "Watts Humphrey attend?\", \"answers\": [\"Illinois Institute of "
        "Technology\"], \"alt\": \"University of Michigan\", \"rephrase\": "
        "\"What university did Watts Humphrey take part in?\", \"loc\": \"nq "
        "question: who played desmond doss father in hacksaw ridge\", "
        "\"loc_ans\": \"Hugo Weaving\"}\n"
        "{\"subject\": \"A\", \"src\": \"Where is A?\", \"alt\": \"B\"}\n");
    rc = rd(zs, INGEST_AUTO, &r);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(r.format == INGEST_ZSRE && r.n_facts == 2);
    if (r.n_facts == 2) {
        CHECK(!strcmp(r.facts[0].prompt, "What university did {} attend?"));
        CHECK(!strcmp(r.facts[0].neighbor_prompts[0],
                      "who played desmond doss father in hacksaw ridge"));
        CHECK(!strcmp(r.facts[0].neighbor_targets[0], " Hugo Weaving"));
        CHECK(r.facts[1].source_line == 2);
    }
    ingest_result_free(&r);

    const char *empty = puts_file("empty_array.json", " [ ]\n");
    CHECK(rd(empty, INGEST_AUTO, &r) == 0 && r.n_facts == 0 &&
          r.n_problems == 0);
    ingest_result_free(&r);
}

TEST(json_bad)
{
#define S(x) x, sizeof(x) - 1
    bad_file("wrong_shape.json", S("{\"facts\": [1, 2]}"), ERR_FORMAT, 1,
             "unknown record shape (fields: facts)");
    bad_file("numbers.json", S("[\n1, 2]"), ERR_FORMAT, 2,
             "a record must be a JSON object");
    bad_file("scalar.json", S("\"hello\""), ERR_FORMAT, 1, "not a JSON list");
    bad_file("truncated.json",
             S("[{\"prompt\": \"{} is\", \"subject\": \"A\", \"target_new\": "
               "\"x\"},\n{\"prompt\": \"{} is\",\n \"subj"),
             ERR_FORMAT, 3, "premature end of input");
    bad_file("unclosed.json",
             S("[{\"prompt\": \"{} is\", \"subject\": \"A\", \"target_new\": "
               "\"x\"}\n"),
             ERR_FORMAT, 2, "never closed");
    bad_file("dupkey.json",
             S("[{\"prompt\": \"{} is\",\n\"prompt\": \"x\"}]"), ERR_FORMAT,
             2, "duplicate object key");
    bad_file("nul.json", S("[{\"prompt\": \"{} \\u0000is\"}]"), ERR_FORMAT, 1,
             "\\u0000 is not allowed");
    bad_file("badutf8.json", S("[{\"prompt\": \"{} \xff is\"}]"), ERR_FORMAT,
             1, "unable to decode byte 0xff");
    bad_file("trailing.json", S("[]\nxyz"), ERR_FORMAT, 2, "text after");
    bad_file("garbage.json", S("\x89PNG\r\n\x1a\n"), ERR_FORMAT, 1,
             "not a JSON list");
    bad_file("empty.json", "", 0, ERR_FORMAT, 1, "empty file");
#undef S
    /* records of the wrong shape inside a good file are per record */
    const char *p = puts_file(
        "rows.json",
        "[{\"prompt\": \"{} is\", \"subject\": \"A\", \"target_new\": \"x\"},\n"
        " {\"prompt\": \"{} is\", \"subject\": 7, \"target_new\": \"x\"},\n"
        " {\"prompt\": \"{} is\", \"target_new\": \"x\"},\n"
        " {\"prompt\": \"B is\", \"subject\": \"B\", \"target_new\": \"\"},\n"
        " {\"prompt\": \"{} is\", \"subject\": \"C\", \"target_new\": \"y\", "
        "\"rephrase_prompt\": {\"a\": 1}}]\n");
    ingest_result r;
    CHECK(rd(p, INGEST_AUTO, &r) == 0);
    CHECK(r.n_facts == 1 && r.n_bad == 4);
    CHECK(has_problem(&r, p, 2, "field 'subject' must be a string"));
    CHECK(has_problem(&r, p, 3, "missing field 'subject'"));
    CHECK(has_problem(&r, p, 4, "empty target_new"));
    CHECK(has_problem(&r, p, 5, "'rephrase_prompt' must be"));
    ingest_result_free(&r);
    /* an explicit format that does not fit: per record */
    CHECK(ingest_read(p, INGEST_COUNTERFACT, NULL, &r) == 0);
    CHECK(r.n_facts == 0 && has_problem(&r, p, 1, "requested_rewrite"));
    ingest_result_free(&r);
    /* CSV read as what it is even when named .json with --format csv */
    const char *c = puts_file("really.json", HEADER "A,{} is,x,y\n");
    CHECK(ingest_read(c, INGEST_CSV, NULL, &r) == 0 && r.n_facts == 1);
    ingest_result_free(&r);
}

TEST(context_length)
{
    tokenizer *tok = NULL;
    int rc = tokenizer_open_dir(&tok, "tests/data/gpt2-vocab");
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return;
    /* " Paris" is one GPT-2 token: "The capital of France is" is 5 */
    const char *p = puts_file("len.csv", HEADER
                              "France,The capital of {} is,Paris,Lyon\n"
                              "France,The largest city of {} is,Paris,Lyon\n"
                              "Spain,The capital of {} is,Madrid Capital,"
                              "Toledo\n");
    ingest_options opt = {.tok = tok, .max_tokens = 6};
    ingest_result r;
    CHECK(ingest_read(p, INGEST_AUTO, &opt, &r) == 0);
    CHECK(r.n_facts == 1 && r.n_bad == 2);
    CHECK(has_problem(&r, p, 3, "make 7 tokens; the model takes at most 6"));
    CHECK(has_problem(&r, p, 4, "make 7 tokens"));
    ingest_result_free(&r);
    opt.max_tokens = 7;
    CHECK(ingest_read(p, INGEST_AUTO, &opt, &r) == 0 && r.n_facts == 3);
    ingest_result_free(&r);
    tokenizer_close(tok);
}

/* "-" reads the standard input, named <stdin> in problems and facts. */
TEST(standard_input)
{
    const char *p = puts_file("stdin.csv", HEADER "A,{} is,x,y\nB,B,z,w\n");
    int saved = dup(STDIN_FILENO), fd = open(p, O_RDONLY);
    CHECK(saved >= 0 && fd >= 0 && dup2(fd, STDIN_FILENO) == STDIN_FILENO);
    close(fd);
    ingest_result r;
    int rc = rd("-", INGEST_AUTO, &r);
    dup2(saved, STDIN_FILENO);
    close(saved);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(r.format == INGEST_CSV && r.n_facts == 1 && r.n_bad == 1);
    if (r.n_facts == 1)
        CHECK(!strcmp(r.facts[0].source_file, INGEST_STDIN) &&
              r.facts[0].source_line == 2);
    CHECK(has_problem(&r, INGEST_STDIN, 3, "is only the subject"));
    ingest_result_free(&r);
}

TEST(format_names)
{
    CHECK(ingest_format_parse("csv") == INGEST_CSV);
    CHECK(ingest_format_parse("CounterFact") == INGEST_COUNTERFACT);
    CHECK(ingest_format_parse("easyedit") == INGEST_EASYEDIT);
    CHECK(ingest_format_parse("zsre") == INGEST_ZSRE);
    CHECK(ingest_format_parse("auto") == INGEST_AUTO);
    CHECK(ingest_format_parse("xml") == -1);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/test_ingest.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(csv_basic_and_normalised);
    RUN(csv_odd_but_valid);
    RUN(csv_bad_rows);
    RUN(csv_good_rows_survive);
    RUN(csv_bad_files);
    RUN(csv_huge_field);
    RUN(error_cap);
    RUN(json_formats);
    RUN(json_bad);
    RUN(context_length);
    RUN(standard_input);
    RUN(format_names);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    return harness_summary();
}

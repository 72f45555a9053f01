/* test_gpt2_config: config.json read with defaults and validation, and
 * the written file read back (and carrying every GPT2LMHeadModel field).
 * Files are made in a temporary directory. */
#include "base/errors.h"
#include "model/gpt2_config.h"
#include "../harness.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_gpt2_config.XXXXXX";

static char *write_cfg(const char *name, const char *text)
{
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *fp = fopen(p, "w");
    fputs(text, fp);
    fclose(fp);
    return p;
}

/* GPT-2 small's config.json as published on the Hugging Face hub. */
static const char gpt2_small[] =
    "{\n  \"activation_function\": \"gelu_new\",\n"
    "  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"attn_pdrop\": 0.1,\n"
    "  \"bos_token_id\": 50256,\n  \"embd_pdrop\": 0.1,\n"
    "  \"eos_token_id\": 50256,\n  \"initializer_range\": 0.02,\n"
    "  \"layer_norm_epsilon\": 1e-05,\n  \"model_type\": \"gpt2\",\n"
    "  \"n_ctx\": 1024,\n  \"n_embd\": 768,\n  \"n_head\": 12,\n"
    "  \"n_layer\": 12,\n  \"n_positions\": 1024,\n  \"resid_pdrop\": 0.1,\n"
    "  \"summary_activation\": null,\n  \"summary_first_dropout\": 0.1,\n"
    "  \"summary_proj_to_labels\": true,\n  \"summary_type\": \"cls_index\",\n"
    "  \"summary_use_proj\": true,\n  \"task_specific_params\": {\n"
    "    \"text-generation\": {\"do_sample\": true, \"max_length\": 50}\n  },\n"
    "  \"vocab_size\": 50257\n}\n";

TEST(reads_gpt2_small)
{
    gpt2_config c;
    int rc = gpt2_config_read(&c, write_cfg("small.json", gpt2_small));
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(c.n_layer == 12 && c.n_head == 12 && c.n_embd == 768);
    CHECK(c.n_positions == 1024 && c.vocab_size == 50257);
    CHECK(c.n_inner == 3072 && c.layer_norm_epsilon == 1e-5f);
}

TEST(defaults_and_null_inner)
{
    gpt2_config c;
    CHECK(gpt2_config_read(&c, write_cfg("empty.json", "{}")) == 0);
    CHECK(c.n_layer == 12 && c.n_head == 12 && c.n_embd == 768 &&
          c.n_positions == 1024 && c.vocab_size == 50257 && c.n_inner == 3072 &&
          c.layer_norm_epsilon == 1e-5f);
    CHECK(gpt2_config_read(&c, write_cfg("null.json",
          "{\"n_embd\": 64, \"n_head\": 4, \"n_inner\": null, \"n_layer\": 2,"
          " \"layer_norm_epsilon\": 1}")) == ERR_FORMAT); /* epsilon 1 */
    CHECK(gpt2_config_read(&c, write_cfg("null.json",
          "{\"n_embd\": 64, \"n_head\": 4, \"n_inner\": null, \"n_layer\": 2,"
          " \"vocab_size\": 300, \"n_positions\": 32,"
          " \"layer_norm_epsilon\": 0.001}")) == 0);
    CHECK(c.n_embd == 64 && c.n_head == 4 && c.n_inner == 256 &&
          c.n_layer == 2 && c.vocab_size == 300 && c.n_positions == 32);
    CHECK(c.layer_norm_epsilon == 0.001f);
}

/* Field by field: the struct has padding that memcmp would compare. */
static int same_config(const gpt2_config *a, const gpt2_config *b)
{
    return a->n_layer == b->n_layer && a->n_head == b->n_head &&
           a->n_embd == b->n_embd && a->n_positions == b->n_positions &&
           a->vocab_size == b->vocab_size && a->n_inner == b->n_inner &&
           a->layer_norm_epsilon == b->layer_norm_epsilon;
}

static void expect_bad(const char *text, int code, const char *want)
{
    gpt2_config c = {0};
    char *p = write_cfg("bad.json", text);
    err_clear();
    int rc = gpt2_config_read(&c, p);
    const char *msg = err_message(rc);
    CHECK_MSG(rc == code, "%s: rc %d (%s)", text, rc, msg);
    CHECK_MSG(strstr(msg, p) && strstr(msg, want), "%s: '%s' not in '%s'", text,
              want, msg);
    CHECK(c.n_layer == 0); /* *out untouched on failure */
}

TEST(rejects_bad_configs)
{
    expect_bad("{\"n_head\": 12,\n \"n_embd\": }", ERR_FORMAT, "line 2");
    expect_bad("", ERR_FORMAT, "bad JSON");
    expect_bad("[12]", ERR_FORMAT, "not a JSON object");
    expect_bad("{\"n_head\": \"12\"}", ERR_FORMAT, "'n_head'");
    expect_bad("{\"n_layer\": 0}", ERR_FORMAT, "'n_layer'");
    expect_bad("{\"vocab_size\": -5}", ERR_FORMAT, "'vocab_size'");
    expect_bad("{\"n_embd\": 768.0}", ERR_FORMAT, "'n_embd'");
    expect_bad("{\"n_positions\": true}", ERR_FORMAT, "'n_positions'");
    expect_bad("{\"n_inner\": 0}", ERR_FORMAT, "'n_inner'");
    expect_bad("{\"n_inner\": \"big\"}", ERR_FORMAT, "'n_inner'");
    expect_bad("{\"n_embd\": 99999999999}", ERR_FORMAT, "too large");
    expect_bad("{\"n_embd\": 770}", ERR_FORMAT, "not divisible");
    /* found by fuzz_config: the implied n_inner must obey the cap too, or
     * the written config (with n_inner spelled out) would not read back */
    expect_bad("{\"n_embd\":12772164, \"n_layer\": 2}", ERR_FORMAT, "'n_inner'");
    expect_bad("{\"n_embd\": 64, \"n_head\": 5}", ERR_FORMAT, "'n_head'");
    expect_bad("{\"activation_function\": \"relu\"}", ERR_FORMAT,
               "'activation_function'");
    expect_bad("{\"activation_function\": 3}", ERR_FORMAT, "'activation_function'");
    expect_bad("{\"model_type\": \"llama\"}", ERR_FORMAT, "'model_type'");
    expect_bad("{\"layer_norm_epsilon\": \"tiny\"}", ERR_FORMAT,
               "'layer_norm_epsilon'");
    expect_bad("{\"layer_norm_epsilon\": 0}", ERR_FORMAT, "'layer_norm_epsilon'");
    expect_bad("{\"layer_norm_epsilon\": -1e-5}", ERR_FORMAT, "'layer_norm_epsilon'");
    expect_bad("{\"layer_norm_epsilon\": 1e-300}", ERR_FORMAT, "'layer_norm_epsilon'");
    expect_bad("{\"n_head\": 12, \"n_head\": 12}", ERR_FORMAT, "duplicate");
    gpt2_config c;
    char p[600];
    snprintf(p, sizeof p, "%s/none.json", tmpdir);
    int rc = gpt2_config_read(&c, p);
    CHECK(rc == ERR_IO && strstr(err_message(rc), p));
}

TEST(write_read_round_trip)
{
    gpt2_config c = {.n_layer = 3, .n_head = 4, .n_embd = 96, .n_positions = 64,
                     .vocab_size = 1234, .n_inner = 200,
                     .layer_norm_epsilon = 1e-5f};
    char p[600];
    snprintf(p, sizeof p, "%s/out/config.json", tmpdir);
    int rc = gpt2_config_write(&c, p); /* no such directory */
    CHECK(rc == ERR_IO && strstr(err_message(rc), p));
    snprintf(p, sizeof p, "%s/config.json", tmpdir);
    rc = gpt2_config_write(&c, p);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    gpt2_config d;
    rc = gpt2_config_read(&d, p);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(same_config(&c, &d));
    json_t *j = json_load_file(p, 0, NULL);
    CHECK(j != NULL);
    if (!j) return;
    CHECK(!strcmp(json_string_value(json_array_get(
              json_object_get(j, "architectures"), 0)), "GPT2LMHeadModel"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "model_type")), "gpt2"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "activation_function")),
                  "gelu_new"));
    CHECK(json_integer_value(json_object_get(j, "bos_token_id")) == 1233);
    CHECK(json_integer_value(json_object_get(j, "eos_token_id")) == 1233);
    CHECK(json_integer_value(json_object_get(j, "n_ctx")) == 64);
    CHECK(json_integer_value(json_object_get(j, "n_inner")) == 200);
    CHECK(json_real_value(json_object_get(j, "attn_pdrop")) == 0.1);
    CHECK(json_real_value(json_object_get(j, "embd_pdrop")) == 0.1);
    CHECK(json_real_value(json_object_get(j, "resid_pdrop")) == 0.1);
    CHECK(json_real_value(json_object_get(j, "initializer_range")) == 0.02);
    CHECK(json_real_value(json_object_get(j, "layer_norm_epsilon")) == 1e-5);
    CHECK(json_is_true(json_object_get(j, "scale_attn_weights")));
    CHECK(json_is_true(json_object_get(j, "use_cache")));
    CHECK(json_is_null(json_object_get(j, "summary_activation")));
    CHECK(!strcmp(json_string_value(json_object_get(j, "summary_type")), "cls_index"));
    CHECK(json_is_true(json_object_get(j, "summary_use_proj")));
    json_decref(j);
    /* nothing inconsistent is written, and the old file stays */
    gpt2_config bad = c;
    bad.n_head = 5;
    CHECK(gpt2_config_write(&bad, p) == ERR_INVALID);
    bad = c;
    bad.vocab_size = 0;
    CHECK(gpt2_config_write(&bad, p) == ERR_INVALID);
    bad = c;
    bad.n_inner = (size_t)1 << 25; /* above the cap: would not read back */
    CHECK(gpt2_config_write(&bad, p) == ERR_INVALID);
    bad = c;
    bad.layer_norm_epsilon = 1.5f;
    CHECK(gpt2_config_write(&bad, p) == ERR_INVALID);
    CHECK(gpt2_config_read(&d, p) == 0 && same_config(&c, &d));
}

int main(void)
{
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(reads_gpt2_small);
    RUN(defaults_and_null_inner);
    RUN(rejects_bad_configs);
    RUN(write_read_round_trip);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    return harness_summary();
}

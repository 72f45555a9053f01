/* init: creates a store on a base model directory (Hugging Face layout:
 * GPT-2 or the Llama family, model/lm.h). Everything about the model is
 * checked before anything is written: its files exist, config.json is a
 * config of a supported architecture, the
 * weights load with the shapes it implies, the tokenizer opens and fits
 * the vocabulary. The store records the model's absolute path, its
 * config text, a hash of every tensor and a model id, so that later
 * commands can tell when the base files change under them. The store is
 * built beside its place and renamed in (store_create): a failed init
 * leaves nothing, and what a killed one leaves (DIR.tmp.PID) the next
 * init of DIR removes. */
#include "cli/cli.h"
#include "base/errors.h"
#include "memit/hparams.h"
#include "model/lm.h"
#include "model/tokenizer.h"
#include "store/modelview.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char cmd_init_usage[] =
    "stamp init --model DIR [--hparams FILE]\n"
    "\n"
    "Creates the store (--store DIR, $STAMP_STORE or ./store) on the base\n"
    "model in DIR, a Hugging Face directory: config.json (GPT2LMHeadModel,\n"
    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM or\n"
    "Qwen3ForCausalLM), model.safetensors or shards with\n"
    "model.safetensors.index.json (F32, F16 or BF16), and tokenizer.json\n"
    "or GPT-2's vocab.json and merges.txt. The base files are never\n"
    "modified; the store records their path and a hash of every tensor.\n"
    "An existing store is never overwritten.\n"
    "\n"
    "The editing hyperparameters (JSON, keys as in a commit's \"hparams\")\n"
    "come from --hparams FILE, else DIR/stamp-hparams.json when the model\n"
    "recommends its own (stamp-world writes one), else built-in defaults;\n"
    "'stamp commit --layers/--set' overrides them per commit.\n"
    "\n"
    "  --model DIR      the base model directory\n"
    "  --hparams FILE   editing hyperparameters for this store\n";

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

int cmd_init(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"hparams", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *hparams_file = NULL;
    int c;
    if (cli_wants_help(argc, argv, "init")) return EXIT_OK;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":m:", opts, NULL)) != -1) {
        if (c == 'm') model = optarg;
        else if (c == 'H') hparams_file = optarg;
        else return cli_option_error("init", c, argv);
    }
    if (optind < argc)
        return cli_usage_error("init", "unexpected argument '%s'",
                               argv[optind]);
    if (!model) return cli_usage_error("init", "--model DIR is required");

    char dir[PATH_MAX], path[PATH_MAX + 32];
    struct stat st;
    if (!realpath(model, dir))
        return cli_fail("model directory '%s' cannot be used: %s", model,
                        strerror(errno));
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return cli_fail("model directory '%s' is not a directory", model);
    /* config.json; the weights (one file, or an index of shards); the
     * tokenizer (tokenizer.json, or GPT-2's vocab.json and merges.txt).
     * A message names the first file missing and what would replace it. */
    static const struct {
        const char *file, *alone, *note;
    } need[] = {
        {"config.json", NULL, ""},
        {"model.safetensors", "model.safetensors.index.json",
         " (nor model.safetensors.index.json)"},
        {"vocab.json", "tokenizer.json", " (nor tokenizer.json)"},
        {"merges.txt", "tokenizer.json", " (nor tokenizer.json)"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, need[i].file);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) continue;
        if (need[i].alone) { /* a file that does without this one */
            snprintf(path, sizeof path, "%s/%s", dir, need[i].alone);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) continue;
        }
        return cli_fail("model directory '%s' has no %s%s", model,
                        need[i].file, need[i].note);
    }

    /* check everything before writing anything */
    lm_config cfg;
    lm_model m = {0};
    tokenizer *tok = NULL;
    char *config_text = NULL, *hashes = NULL, *hp_text = NULL;
    char model_id[33], created[32];
    int rc, exit_code = EXIT_FAIL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = lm_config_read(&cfg, dir))) goto fail;
    if (!(config_text = read_text(path))) {
        rc = err_set(ERR_IO, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = lm_model_load(&m, dir))) goto fail;
    lm_model_free(&m);
    if ((rc = tokenizer_open_dir(&tok, dir))) goto fail;
    if (tokenizer_vocab_size(tok) > cfg.vocab_size) {
        rc = err_set(ERR_FORMAT, "the tokenizer in '%s' has %zu tokens but "
                     "the model only %zu (vocab_size)", dir,
                     tokenizer_vocab_size(tok), cfg.vocab_size);
        goto fail;
    }
    if ((rc = modelview_hash_base(dir, &hashes, model_id))) goto fail;

    /* editing hyperparameters: --hparams FILE, else the ones the model
     * directory recommends (stamp-world writes them), else defaults */
    if (hparams_file) snprintf(path, sizeof path, "%s", hparams_file);
    else snprintf(path, sizeof path, "%s/stamp-hparams.json", dir);
    if (hparams_file || stat(path, &st) == 0) {
        hparams h;
        if (!(hp_text = read_text(path))) {
            rc = err_set(ERR_IO, "cannot read '%s': %s", path, strerror(errno));
            goto fail;
        }
        hparams_default(&h, &cfg);
        if ((rc = hparams_apply_json(&h, hp_text, &cfg))) {
            char why[512];
            snprintf(why, sizeof why, "%s", err_message(rc));
            rc = err_set(rc, "'%s': %s", path, why);
            goto fail;
        }
    }

    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *keys[] = {"format_version", "model_dir", "config",
                          "model_tensor_hashes", "model_id", "created",
                          "hparams"};
    const char *vals[] = {"1", dir, config_text, hashes, model_id, created,
                          hp_text};
    if ((rc = store_create(g->store_dir, keys, vals, hp_text ? 7 : 6)))
        goto fail;
    printf("initialized store '%s' on model '%s'\n", g->store_dir, dir);
    printf("  %s, %zu layers, n_embd %zu, vocab %zu, n_positions %zu; model "
           "id %s\n", cfg.arch, cfg.n_layer, cfg.n_embd, cfg.vocab_size,
           cfg.n_positions, model_id);
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_fail_code(rc);
out:
    tokenizer_close(tok);
    free(config_text);
    free(hashes);
    free(hp_text);
    return exit_code;
}

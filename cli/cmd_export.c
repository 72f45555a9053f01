/* export: writes the current model (base + the store's edited tensors)
 * as a complete Hugging Face model directory, or (--format gguf) as one
 * GGUF file for llama.cpp. The work is the library's (repo/export.h:
 * export_hf builds it beside DIR and moves it into place; repo/
 * export_gguf.h writes a temporary and renames it; so a failure never
 * leaves half a model); this file parses the options and prints what
 * was exported. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/export.h"
#include "repo/export_gguf.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

const char cmd_export_usage[] =
    "stamp export DIR [--force]\n"
    "stamp export --format gguf FILE [--type f32|f16|bf16|q8_0] [--model DIR]\n"
    "\n"
    "Writes the current model (the base model with every edit in effect)\n"
    "to DIR in the Hugging Face layout: config.json, model.safetensors (the\n"
    "base file's tensor names and order, F32), vocab.json and merges.txt,\n"
    "plus tokenizer and generation files when the base model has them. It\n"
    "loads wherever the base model loads. The base model is never written.\n"
    "\n"
    "  --force        write into DIR even when it is not empty (files of\n"
    "                 the same names are replaced, others left alone)\n"
    "  --format F     hf (the default: the directory above) or gguf: one\n"
    "                 GGUF v3 file that llama.cpp loads (GPT-2, Llama,\n"
    "                 Mistral, Qwen2, Qwen3: metadata, tokenizer and\n"
    "                 tensors under llama.cpp's names; docs/gguf.md),\n"
    "                 written to a temporary beside FILE and renamed; an\n"
    "                 existing FILE is replaced\n"
    "  --type T       how gguf stores the matrices: f32 (the default), f16,\n"
    "                 bf16 or q8_0; norms, biases and position_embd stay f32\n"
    "  --model DIR    with --format gguf: convert the model directory DIR\n"
    "                 as it is, without a store\n"
    "\n"
    "DIR is created when missing; a non-empty DIR is refused without\n"
    "--force, and so is the base model's own directory. FILE's directory\n"
    "must exist.\n";

/* --format gguf: one file, written whole or not at all; the store's
 * model, or model_dir's when given */
static int export_gguf_file(const char *path, gguf_type type,
                            const char *model_dir, const cli_globals *g)
{
    store *s = NULL;
    export_result r;
    int rc;
    if (model_dir) {
        rc = export_gguf_dir(model_dir, path, type, &r);
    } else {
        rc = cli_store_open(&s, g);
        if (!rc) rc = export_gguf(s, path, type, &r);
        store_close(s);
    }
    if (rc) return cli_fail_code(rc);
    if (model_dir)
        printf("exported the model '%s' to '%s'", model_dir, path);
    else if (r.head)
        printf("exported commit %llu to '%s'", (unsigned long long)r.head,
               path);
    else
        printf("exported the base model (no commits) to '%s'", path);
    printf(": gguf %s, %zu tensors", gguf_type_name(type), r.n_tensors);
    if (model_dir) printf("\n");
    else printf(", %zu edited\n", r.n_edited);
    return EXIT_OK;
}

int cmd_export(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"force", no_argument, 0, 'f'},
        {"format", required_argument, 0, 'F'},
        {"type", required_argument, 0, 't'},
        {"model", required_argument, 0, 'm'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "export")) return EXIT_OK;
    int force = 0, gguf = 0, c;
    const char *type_name = NULL, *model_dir = NULL;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":f", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = 1; break;
        case 'F':
            if (!strcmp(optarg, "gguf")) gguf = 1;
            else if (!strcmp(optarg, "hf")) gguf = 0;
            else
                return cli_usage_error("export", "unknown --format '%s' (hf "
                                       "or gguf)", optarg);
            break;
        case 't': type_name = optarg; break;
        case 'm': model_dir = optarg; break;
        default: return cli_option_error("export", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("export", gguf ? "where to? (a file)"
                                              : "where to? (a directory)");
    if (optind + 1 < argc)
        return cli_usage_error("export", "unexpected argument '%s'",
                               argv[optind + 1]);
    const char *dir = argv[optind];
    if (!gguf && type_name)
        return cli_usage_error("export", "--type is for --format gguf; the "
                               "hf format is always f32");
    if (!gguf && model_dir)
        return cli_usage_error("export", "--model is for --format gguf; the "
                               "hf format exports the store's model");
    if (gguf && force)
        return cli_usage_error("export", "--force is for --format hf; a gguf "
                               "file is replaced whole");
    int type = type_name ? gguf_type_parse(type_name) : GGUF_F32;
    if (type < 0)
        return cli_usage_error("export", "unknown --type '%s' (f32, f16, bf16 "
                               "or q8_0)", type_name);
    if (gguf) return export_gguf_file(dir, (gguf_type)type, model_dir, g);

    /* DIR is checked before the store is opened (export_hf checks again) */
    store *s = NULL;
    export_result r;
    int rc = export_check_dir(dir, force, NULL);
    if (!rc) rc = cli_store_open(&s, g);
    if (!rc) rc = export_hf(s, dir, force, &r);
    store_close(s);
    if (rc) return cli_fail_code(rc);
    if (r.head)
        printf("exported commit %llu to '%s'", (unsigned long long)r.head, dir);
    else
        printf("exported the base model (no commits) to '%s'", dir);
    printf(": %zu tensor%s, %zu edited\n", r.n_tensors,
           r.n_tensors == 1 ? "" : "s", r.n_edited);
    return EXIT_OK;
}

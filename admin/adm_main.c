/* fhirsub-admin: administration of mod_fhirsub's database (schema, subscriptions,
 * binding-token grants, the event backlog). main() parses the global options, picks
 * the command, parses its options, opens the database it needs and runs it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "fs_store.h"
#include "adm.h"
#include "adm_db.h"
#include "adm_log.h"

static const adm_cmd_t *const commands[] = {
    &adm_cmd_migrate, &adm_cmd_version,
    &adm_cmd_subscriptions,
    &adm_cmd_grants, &adm_cmd_revoke, &adm_cmd_revoke_user, &adm_cmd_prune_grants,
    &adm_cmd_backlog, &adm_cmd_prune,
    NULL
};

const apr_getopt_option_t adm_no_options[] = { { NULL, 0, 0, NULL } };

/* Global options are accepted before and after the command. */
static const apr_getopt_option_t global_options[] = {
    { "driver", 'd', 1, "NAME: sqlite3 or pgsql, as DBDriver (else $FHIRSUB_DB_DRIVER)" },
    { "params", 'p', 1, "PARAMS: the SQLite file or a libpq conninfo, as DBDParams\n"
      "                             (else $FHIRSUB_DB_PARAMS)" },
    { "json", 'j', 0, "print one JSON document instead of text" },
    { "verbose", 'v', 0, "log debug lines on stderr" },
    { "help", 'h', 0, "print this help, or a command's (COMMAND --help)" },
    { "version", 'V', 0, "print the version of " ADM_NAME },
    { NULL, 0, 0, NULL }
};

/* ---- errors shared by the commands (adm.h) ------------------------------ */

apr_status_t adm_fail(apr_status_t rv, const char *fmt, ...)
{
    va_list ap;
    fputs(ADM_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return rv;
}

apr_status_t adm_usage(const char *fmt, ...)
{
    va_list ap;
    fputs(ADM_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nRun `" ADM_NAME " --help` for the commands and options.\n", stderr);
    return ADM_EUSAGE;
}

apr_status_t adm_parse_i64(const char *opt, const char *text, apr_int64_t min,
                           apr_int64_t max, apr_int64_t *pval)
{
    char *end = NULL;
    apr_int64_t v;

    if (!text || !*text || text[0] == '-' || text[0] == '+' || text[0] == ' ') {
        return adm_usage("%s wants a whole number, not \"%s\"", opt, text ? text : "");
    }
    errno = 0;
    v = apr_strtoi64(text, &end, 10);
    if (errno == ERANGE || *end || v < min || v > max) {
        return adm_usage("%s wants a whole number from %" APR_INT64_T_FMT " to %"
                         APR_INT64_T_FMT ", not \"%s\"", opt, min, max, text);
    }
    *pval = v;
    return APR_SUCCESS;
}

const char *adm_arg(const adm_ctx_t *ctx, int i)
{
    return i < ctx->args->nelts ? APR_ARRAY_IDX(ctx->args, i, const char *) : NULL;
}

/* ---- help ----------------------------------------------------------------- */

/* An option taking an argument names it first in its description: "USER: ...". */
static void print_option(const apr_getopt_option_t *opt)
{
    const char *text = opt->description, *colon = strstr(text, ": ");
    char left[64], arg[32] = "";

    if (opt->has_arg && colon && (apr_size_t)(colon - text) < sizeof(arg) - 1) {
        apr_snprintf(arg, sizeof(arg), " %.*s", (int)(colon - text), text);
        text = colon + 2;
    }
    if (opt->optch < 256) {
        apr_snprintf(left, sizeof(left), "-%c, --%s%s", opt->optch, opt->name, arg);
    }
    else {
        apr_snprintf(left, sizeof(left), "    --%s%s", opt->name, arg);
    }
    printf("  %-26s %s\n", left, text);
}

static void print_options(const apr_getopt_option_t *opts)
{
    for (; opts->name; ++opts) print_option(opts);
}

static void print_cmd_help(const adm_cmd_t *cmd)
{
    printf("usage: " ADM_NAME " [options] %s\n\n%s\n", cmd->synopsis, cmd->help);
    if (cmd->opts[0].name) {
        printf("\noptions of %s:\n", cmd->name);
        print_options(cmd->opts);
    }
}

static void print_main_help(void)
{
    int i;

    printf("usage: " ADM_NAME " [options] COMMAND [command options] [arguments]\n\n"
           "Administration of mod_fhirsub's database: the schema, subscriptions,\n"
           "binding-token grants and the stored events. It works on the database httpd's\n"
           "mod_dbd uses (DBDriver, DBDParams), with the same core library.\n\n"
           "options:\n");
    print_options(global_options);
    printf("\ncommands:\n");
    for (i = 0; commands[i]; ++i) {
        printf("\n  %s\n", commands[i]->synopsis);
        printf("%s\n", commands[i]->help);
        if (commands[i]->opts[0].name) print_options(commands[i]->opts);
    }
    printf("\n"
           "SQLite: httpd's children (www-data) write the database file and the -wal and\n"
           "-shm files SQLite keeps beside it. Run as root, " ADM_NAME " switches to the\n"
           "owner of the database file (user and groups; of its directory when `migrate`\n"
           "creates the file) before opening it, so it never leaves files the children\n"
           "cannot open. Other users need write access to the file and its directory.\n\n"
           "environment:\n"
           "  FHIRSUB_DB_DRIVER, FHIRSUB_DB_PARAMS  the database when --driver, --params\n"
           "                                       are not given\n\n"
           "exit status: 0 done, 1 runtime error (database unavailable, query failed,\n"
           "not found), 2 usage error. Errors go to stderr, results to stdout.\n\n"
           "examples:\n"
           "  " ADM_NAME " -d sqlite3 -p /var/lib/fhirsub/fhirsub.db migrate\n"
           "  " ADM_NAME " -d pgsql -p \"host=db dbname=fhirsub user=fhirsub\" "
           "grants --user alice\n"
           "  " ADM_NAME " prune --older-than 604800 --keep 100 --json\n");
}

/* ---- argument parsing ----------------------------------------------------- */

static const adm_cmd_t *find_cmd(const char *name)
{
    int i;
    for (i = 0; commands[i]; ++i) {
        if (!strcmp(commands[i]->name, name)) return commands[i];
    }
    return NULL;
}

static apr_getopt_option_t *merge_options(apr_pool_t *p, const apr_getopt_option_t *a,
                                          const apr_getopt_option_t *b)
{
    apr_size_t na = 0, nb = 0;
    apr_getopt_option_t *all;

    while (a[na].name) ++na;
    while (b[nb].name) ++nb;
    all = apr_pcalloc(p, sizeof(*all) * (na + nb + 1));
    memcpy(all, a, sizeof(*all) * na);
    memcpy(all + na, b, sizeof(*all) * nb);
    return all;
}

static const char *option_name(const apr_getopt_option_t *opts, int optch)
{
    for (; opts->name; ++opts) {
        if (opts->optch == optch) return opts->name;
    }
    return NULL;
}

#define ADM_GETOPT_MSG_LEN 256

/* apr_getopt's complaint ("prog: invalid option: x"), kept for our own message. */
static void getopt_error(void *baton, const char *fmt, ...)
{
    char *msg = baton;
    const char *text;
    va_list ap;

    va_start(ap, fmt);
    apr_vsnprintf(msg, ADM_GETOPT_MSG_LEN, fmt, ap);
    va_end(ap);
    /* drop the program name apr puts first, and the newline */
    text = strstr(msg, ": ");
    if (text) memmove(msg, text + 2, strlen(text + 2) + 1);
    msg[strcspn(msg, "\n")] = '\0';
}

/* Parse options until the first argument (interleave off) or all of them. */
static apr_status_t parse_options(adm_ctx_t *ctx, apr_getopt_t *os,
                                  const apr_getopt_option_t *opts)
{
    char *msg = apr_pcalloc(ctx->p, ADM_GETOPT_MSG_LEN);
    const char *optarg;
    apr_status_t rv;
    int optch;

    os->errfn = getopt_error;
    os->errarg = msg;
    while (APR_SUCCESS == (rv = apr_getopt_long(os, opts, &optch, &optarg))) {
        const char *name = option_name(opts, optch);
        switch (optch) {
        case 'd': ctx->driver = optarg; break;
        case 'p': ctx->params = optarg; break;
        case 'j': ctx->json = 1; break;
        case 'v': ctx->verbose = 1; break;
        default:
            apr_table_set(ctx->opts, name, optarg ? optarg : "1");
            break;
        }
    }
    if (rv == APR_EOF) return APR_SUCCESS;
    return adm_usage("%s", *msg ? msg : "bad option");
}

static void collect_args(adm_ctx_t *ctx, apr_getopt_t *os)
{
    int i;
    ctx->args = apr_array_make(ctx->p, 2, sizeof(const char *));
    for (i = os->ind; i < os->argc; ++i) {
        APR_ARRAY_PUSH(ctx->args, const char *) = os->argv[i];
    }
}

static apr_status_t parse_cmd(adm_ctx_t *ctx, int argc, const char *const *argv,
                              const adm_cmd_t *cmd)
{
    apr_getopt_t *os;
    apr_status_t rv;

    /* argv[0] is the command name, skipped as getopt skips a program name */
    apr_getopt_init(&os, ctx->p, argc, argv);
    os->interleave = 1;
    rv = parse_options(ctx, os, merge_options(ctx->p, global_options, cmd->opts));
    if (rv != APR_SUCCESS) return rv;
    collect_args(ctx, os);
    if (apr_table_get(ctx->opts, "help")) return APR_SUCCESS;
    if (ctx->args->nelts < cmd->min_args) {
        return adm_usage("%s: missing argument, usage: %s", cmd->name, cmd->synopsis);
    }
    if (ctx->args->nelts > cmd->max_args) {
        return adm_usage("%s: unexpected argument \"%s\", usage: %s", cmd->name,
                         adm_arg(ctx, cmd->max_args), cmd->synopsis);
    }
    return APR_SUCCESS;
}

static void env_defaults(adm_ctx_t *ctx)
{
    if (!ctx->driver) ctx->driver = getenv("FHIRSUB_DB_DRIVER");
    if (!ctx->params) ctx->params = getenv("FHIRSUB_DB_PARAMS");
}

/* Global options, then the command: *pcmd stays NULL when help or version was all. */
static apr_status_t parse_args(adm_ctx_t *ctx, int argc, const char *const *argv,
                               const adm_cmd_t **pcmd)
{
    apr_getopt_t *os;
    const char *name;
    apr_status_t rv;

    *pcmd = NULL;
    apr_getopt_init(&os, ctx->p, argc, argv);
    if (APR_SUCCESS != (rv = parse_options(ctx, os, global_options))) return rv;
    if (apr_table_get(ctx->opts, "help")) {
        print_main_help();
        return APR_SUCCESS;
    }
    if (apr_table_get(ctx->opts, "version")) {
        printf(ADM_NAME " %s (schema version %d)\n", FHIRSUB_VERSION, FS_SCHEMA_VERSION);
        return APR_SUCCESS;
    }
    if (os->ind >= argc) return adm_usage("no command given");
    name = os->argv[os->ind];
    if (!(*pcmd = find_cmd(name))) return adm_usage("unknown command \"%s\"", name);
    return parse_cmd(ctx, argc - os->ind, os->argv + os->ind, *pcmd);
}

/* ---- main ------------------------------------------------------------------- */

static apr_status_t run(adm_ctx_t *ctx, int argc, const char *const *argv)
{
    const adm_cmd_t *cmd = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = parse_args(ctx, argc, argv, &cmd)) || !cmd) goto leave;
    if (apr_table_get(ctx->opts, "help")) {
        print_cmd_help(cmd);
        goto leave;
    }
    env_defaults(ctx);
    adm_log_init(ctx->verbose);
    if (cmd->needs != ADM_NEEDS_NOTHING) {
        if (APR_SUCCESS != (rv = adm_db_open(ctx, cmd->needs))) goto leave;
    }
    rv = cmd->run(ctx);
leave:
    return rv;
}

static int exit_code(apr_status_t rv)
{
    if (rv == APR_SUCCESS) return ADM_EXIT_OK;
    return rv == ADM_EUSAGE ? ADM_EXIT_USAGE : ADM_EXIT_ERROR;
}

int main(int argc, const char *const *argv)
{
    adm_ctx_t ctx;
    apr_status_t rv;
    apr_pool_t *p = NULL;

    if (APR_SUCCESS != apr_app_initialize(&argc, &argv, NULL)
        || APR_SUCCESS != apr_pool_create(&p, NULL)) {
        fprintf(stderr, ADM_NAME ": cannot initialise APR\n");
        return ADM_EXIT_ERROR;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.p = p;
    ctx.opts = apr_table_make(p, 4);
    ctx.now = apr_time_now();
    rv = run(&ctx, argc, argv);
    fflush(stdout);
    /* closes the database (pool cleanup) before APR goes */
    apr_pool_destroy(p);
    apr_terminate();
    return exit_code(rv);
}

/*
 * Bad input through libclm gives a status code and a message, never a
 * crash, and leaves out-pointers untouched: NULL for every pointer
 * parameter of every function, invalid UTF-8, invalid JSON, arguments of
 * the wrong shape, unknown arguments, garbage ids and PEM, unknown
 * operations, a closed handle. Also checks the surface: every operation of
 * the library's own table (clm_operations_json) is a function of clm.h.
 *
 *     cc -I include -o bad_input_test bad_input_test.c -L lib -lclm && ./bad_input_test WORK_DIR
 */
#include <stdint.h>

#include "support.h"

static char sentinel;
#define SENTINEL ((void *)&sentinel)
#define COUNT_SENTINEL UINT64_C(0xdeadbeefcafe)

/* Per output kind: declare the out variable, pass it (or NULL), tell
 * whether the call wrote it, free what it wrote. */
#define OUT_DECL_JSON char *out = SENTINEL
#define OUT_DECL_TEXT char *out = SENTINEL
#define OUT_DECL_ACTOR clm_actor *out = SENTINEL
#define OUT_DECL_COUNT uint64_t out = COUNT_SENTINEL
#define OUT_DECL_NOTHING int out = 0
#define OUT_ARG_JSON(null_out) , (null_out) ? NULL : &out
#define OUT_ARG_TEXT(null_out) , (null_out) ? NULL : &out
#define OUT_ARG_ACTOR(null_out) , (null_out) ? NULL : &out
#define OUT_ARG_COUNT(null_out) , (null_out) ? NULL : &out
#define OUT_ARG_NOTHING(null_out)
#define OUT_WRITTEN_JSON (out != SENTINEL)
#define OUT_WRITTEN_TEXT (out != SENTINEL)
#define OUT_WRITTEN_ACTOR (out != SENTINEL)
#define OUT_WRITTEN_COUNT (out != COUNT_SENTINEL)
#define OUT_WRITTEN_NOTHING (out != 0)
#define OUT_FREE_JSON clm_string_free(out)
#define OUT_FREE_TEXT clm_string_free(out)
#define OUT_FREE_ACTOR clm_actor_free(out)
#define OUT_FREE_COUNT (void)out
#define OUT_FREE_NOTHING (void)out
#define HAS_OUT_JSON 1
#define HAS_OUT_TEXT 1
#define HAS_OUT_ACTOR 1
#define HAS_OUT_COUNT 1
#define HAS_OUT_NOTHING 0
#define ACTOR_ARG_1(a) , a
#define ACTOR_ARG_0(a)
#define PROGRESS_ARG_1 , NULL, NULL
#define PROGRESS_ARG_0

/* try_<name>(clm, actor, arguments, null_out, &wrote): calls clm_<name>
 * with those pointers (the actor only where the function takes one). */
#define CLM_OPERATION(name, output, needs_actor, progress)                      \
  static clm_status try_##name(const clm_handle *clm, const clm_actor *actor,   \
                               const char *arguments, int null_out, int *wrote) { \
    OUT_DECL_##output;                                                          \
    (void)actor;                                                                \
    (void)null_out;                                                             \
    clm_status status = clm_##name(clm ACTOR_ARG_##needs_actor(actor), arguments \
                                   PROGRESS_ARG_##progress OUT_ARG_##output(null_out)); \
    *wrote = OUT_WRITTEN_##output;                                              \
    if (*wrote) OUT_FREE_##output;                                              \
    return status;                                                              \
  }
#include "operations.inc"
#undef CLM_OPERATION

struct operation {
  const char *name;
  int needs_actor, has_out;
  clm_status (*call)(const clm_handle *, const clm_actor *, const char *, int, int *);
};

static const struct operation operations[] = {
#define CLM_OPERATION(name, output, needs_actor, progress) \
  {#name, needs_actor, HAS_OUT_##output, try_##name},
#include "operations.inc"
#undef CLM_OPERATION
};
static const size_t operation_count = sizeof operations / sizeof operations[0];
static const char *handle_operations[] = {"open", "close", "version", "system_actor"};

/* Runs `check` for every operation; counts one CHECK per rule. */
static void every_operation(const char *what, clm_status expected, const clm_handle *clm,
                            const clm_actor *actor, const char *arguments, int null_actor,
                            int null_out) {
  int bad = 0;
  for (size_t i = 0; i < operation_count; i++) {
    const struct operation *op = &operations[i];
    if (null_actor && !op->needs_actor) continue;
    if (null_out && !op->has_out) continue;
    int wrote = 0;
    clm_status status = op->call(clm, null_actor ? NULL : actor, arguments, null_out, &wrote);
    const char *message = clm_last_error_message();
    if (status != expected || wrote || !message || !*message) {
      bad++;
      printf("  clm_%s: status %s (want %s), wrote out: %d, message: %s\n", op->name,
             clm_error_code_name(status), clm_error_code_name(expected), wrote,
             message ? message : "none");
    }
  }
  char line[256];
  snprintf(line, sizeof line, "%s: every operation gives %s and writes nothing", what,
           clm_error_code_name(expected));
  CHECK(bad == 0, line);
}

static int is_bound(const char *name) {
  for (size_t i = 0; i < operation_count; i++)
    if (strcmp(operations[i].name, name) == 0) return 1;
  for (size_t i = 0; i < 4; i++)
    if (strcmp(handle_operations[i], name) == 0) return 1;
  return 0;
}

/* Every operation of the library's table is bound, and nothing else. */
static void surface(void) {
  char *table = NULL;
  CHECK(clm_operations_json(&table) == CLM_OK && table, "clm_operations_json");
  if (!table) return;
  size_t seen = 0;
  int missing = 0;
  const char *needle = "\"name\":\"";
  for (const char *at = strstr(table, needle); at; at = strstr(at + 1, needle)) {
    const char *start = at + strlen(needle), *end = strchr(start, '"');
    /* An operation's name is followed by its needs_actor (the keys are
     * sorted); an argument's by its required. */
    if (!end || strncmp(end, "\",\"needs_actor\"", 15) != 0) continue;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(end - start), start);
    seen++;
    if (!is_bound(name)) {
      missing++;
      printf("  not bound: clm_%s\n", name);
    }
  }
  CHECK(missing == 0, "every operation of the library's table has its clm_<name>");
  CHECK(seen == operation_count + 4 && seen == (size_t)count_of(table, "\"needs_actor\":"),
        "the table and the bound functions have the same size");
  CHECK(clm_operations_json(NULL) == CLM_INVALID_INPUT, "clm_operations_json(NULL)");
  clm_string_free(table);
}

static void before_open(void) {
  clm_handle *h = SENTINEL;
  CHECK(clm_open(NULL, &h) == CLM_INVALID_INPUT && h == SENTINEL,
        "clm_open(NULL) is INVALID_INPUT and leaves the out-pointer");
  CHECK(clm_last_error_message() != NULL, "a failure leaves a message");
  CHECK(clm_last_error_json() && strstr(clm_last_error_json(), "\"code\":\"INVALID_INPUT\"") &&
          json_number(clm_last_error_json(), "number") == CLM_INVALID_INPUT,
        "and its JSON, with the code and number");
  CHECK(clm_open("{\"sqlite_dir\":\"\xff\xfe\"}", &h) == CLM_INVALID_INPUT,
        "invalid UTF-8 options are INVALID_INPUT");
  CHECK(clm_open("not json", &h) == CLM_INVALID_INPUT, "garbage JSON options are INVALID_INPUT");
  CHECK(clm_open("[1, 2]", &h) == CLM_INVALID_INPUT, "options that are not an object");
  CHECK(clm_open("{\"sqlite_dir\":\"/tmp/x\"}", &h) == CLM_INVALID_INPUT,
        "no master key is INVALID_INPUT");
  CHECK(clm_open("{\"sqlite_dir\":\"/tmp/x\",\"master_key\":\"short\"}", &h) == CLM_CONFIGURATION,
        "a bad master key is CONFIGURATION");
  CHECK(clm_open("{\"sqlite_dir\":\"/tmp/x\",\"bogus\":1}", &h) == CLM_INVALID_INPUT,
        "an unknown option is INVALID_INPUT");
  CHECK(clm_open("{}", NULL) == CLM_INVALID_INPUT, "a NULL out-pointer is INVALID_INPUT");
  CHECK(h == SENTINEL, "no failed open wrote the out-pointer");
  CHECK(strcmp(clm_error_code_name(CLM_CLOSED), "CLOSED") == 0 &&
          strcmp(clm_error_code_name(CLM_OK), "OK") == 0 && clm_error_code_name(999) == NULL,
        "status names");
  CHECK(clm_version() && strlen(clm_version()) > 0, "clm_version");
  CHECK(clm_close(NULL) == CLM_INVALID_INPUT, "clm_close(NULL)");
  clm_actor *actor = SENTINEL;
  CHECK(clm_system_actor(NULL, &actor) == CLM_INVALID_INPUT && actor == SENTINEL,
        "clm_system_actor(NULL, ...)");
  char *json = SENTINEL;
  CHECK(clm_actor_json(NULL, &json) == CLM_INVALID_INPUT && json == SENTINEL,
        "clm_actor_json(NULL, ...)");
  clm_string_free(NULL);
  clm_actor_free(NULL);
  clm_handle_free(NULL);
  CHECK(1, "every _free accepts NULL");
}

/* The last error's JSON has `code` and names `field`, and its message is
 * the one clm_last_error_message gives. */
static void expect_field(const char *what, clm_status code, const char *field) {
  const char *error = clm_last_error_json();
  char *name = json_string(error, "field"), *message = json_string(error, "message");
  char line[256];
  snprintf(line, sizeof line, "%s: the error's JSON is %s naming the field %s", what,
           clm_error_code_name(code), field);
  CHECK(error && json_number(error, "number") == (long long)code &&
          strstr(error, clm_error_code_name(code)) && name && strcmp(name, field) == 0 && message &&
          clm_last_error_message() && strcmp(message, clm_last_error_message()) == 0 &&
          strstr(error, "\"violations\":[]"),
        line);
  if (error && !(name && strcmp(name, field) == 0)) printf("  got: %s\n", error);
  free(name);
  free(message);
}

/* Numbers out of range for their field (arguments are JSON text in C, so
 * the core sees them as they are): INVALID_INPUT naming the field's path,
 * nothing written, nothing issued. */
static void out_of_range(clm_handle *h, const clm_actor *sys, const char *root_id) {
  static const char *too_big[] = {"5000000000", "-1", "18446744073709551616", "1e300", "30.5"};
  for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
    char *out = SENTINEL;
    char *request = fmt("{\"request\":{\"issuer_id\":\"%s\",\"validity_days\":%s,"
                        "\"subject\":{\"common_name\":\"range.example.com\"}}}", root_id, too_big[i]);
    char what[128];
    snprintf(what, sizeof what, "validity_days %s", too_big[i]);
    CHECK(clm_issue_certificate(h, sys, request, &out) == CLM_INVALID_INPUT && out == SENTINEL, what);
    expect_field(what, CLM_INVALID_INPUT, "request.validity_days");
    free(request);
  }
  char *out = SENTINEL;
  CHECK(clm_fetch_undelivered_notifications(h, sys, "{\"limit\":4294967296}", &out) == CLM_INVALID_INPUT &&
          out == SENTINEL, "a limit past uint32 is INVALID_INPUT");
  expect_field("limit 4294967296", CLM_INVALID_INPUT, "limit");
  CHECK(clm_list_users(h, sys, "{\"page\":{\"limit\":99999999999}}", &out) == CLM_INVALID_INPUT &&
          out == SENTINEL, "a page limit past uint32 is INVALID_INPUT");
  expect_field("page.limit 99999999999", CLM_INVALID_INPUT, "page.limit");
  CHECK(clm_search_certificates(h, sys, "{\"search\":{\"common_name\":\"range.example.com\"}}", &out) ==
          CLM_OK && out != SENTINEL && strstr(out, "\"items\":[]"),
        "no out-of-range request issued anything");
  if (out != SENTINEL) clm_string_free(out);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bad_input_test WORK_DIR\n");
    return 2;
  }
  const char *work = argv[1];
  before_open();
  surface();

  char *options = fmt("{\"sqlite_dir\":\"%s/data\",\"master_key_file\":\"%s/master.key\","
                      "\"create_master_key\":true}", work, work);
  clm_handle *h = NULL;
  CHECK(clm_open(options, &h) == CLM_OK && h, "open a SQLite directory");
  free(options);
  if (!h) return finish();
  CHECK(clm_last_error_message() == NULL && clm_last_error_json() == NULL,
        "success clears the message and its JSON");
  clm_actor *sys = NULL;
  CHECK(clm_system_actor(h, &sys) == CLM_OK, "system actor");
  CHECK(clm_system_actor(h, NULL) == CLM_INVALID_INPUT, "clm_system_actor(h, NULL)");
  char *json = SENTINEL;
  CHECK(clm_actor_json(sys, NULL) == CLM_INVALID_INPUT, "clm_actor_json(actor, NULL)");

  /* Every pointer parameter of every operation function. */
  every_operation("a NULL clm", CLM_INVALID_INPUT, NULL, sys, "{}", 0, 0);
  every_operation("a NULL actor", CLM_INVALID_INPUT, h, sys, "{}", 1, 0);
  every_operation("a NULL result pointer", CLM_INVALID_INPUT, h, sys, "{}", 0, 1);
  /* Arguments nothing could run with. */
  every_operation("arguments that are not UTF-8", CLM_INVALID_INPUT, h, sys, "{\"x\":\"\xc3\x28\"}", 0, 0);
  every_operation("arguments that are not JSON", CLM_INVALID_INPUT, h, sys, "{not json", 0, 0);
  every_operation("arguments that are not an object", CLM_INVALID_INPUT, h, sys, "[1,2,3]", 0, 0);
  every_operation("an unknown argument", CLM_INVALID_INPUT, h, sys, "{\"no_such_argument\":1}", 0, 0);

  /* Wrong values, one operation at a time. */
  char *out = SENTINEL;
  CHECK(clm_create_user(h, sys, "{\"new\":5}", &out) == CLM_INVALID_INPUT && out == SENTINEL,
        "a wrong JSON type is INVALID_INPUT");
  CHECK(strstr(clm_last_error_message(), "new") != NULL, "the message names the argument");
  expect_field("a wrong JSON type", CLM_INVALID_INPUT, "new");
  CHECK(clm_create_user(h, sys, "{\"new\":{\"username\":5,\"email\":\"x@example.com\"}}", &out) ==
          CLM_INVALID_INPUT, "a wrong type inside an input object");
  expect_field("a wrong type inside an input object", CLM_INVALID_INPUT, "new.username");
  CHECK(clm_create_user(h, sys, NULL, &out) == CLM_INVALID_INPUT, "a missing argument");
  CHECK(clm_get_user(h, sys, "{\"id\":\"not-a-uuid\"}", &out) == CLM_INVALID_INPUT,
        "a garbage id is INVALID_INPUT");
  CHECK(clm_get_user(h, sys, "{\"id\":\"00000000-0000-0000-0000-000000000000\"}", &out) ==
          CLM_NOT_FOUND, "an unknown id is NOT_FOUND");
  CHECK(strstr(clm_last_error_json(), "\"code\":\"NOT_FOUND\"") &&
          strstr(clm_last_error_json(), "\"entity\":\"") && strstr(clm_last_error_json(), "\"field\":null"),
        "a NOT_FOUND error's JSON names the entity");
  CHECK(clm_revoke_certificate(h, sys, "{\"id\":\"00000000-0000-0000-0000-000000000000\","
                                       "\"reason\":\"no_such_reason\"}", &out) == CLM_INVALID_INPUT,
        "an unknown revocation reason is INVALID_INPUT");
  clm_status st = clm_import_certificates(
      h, sys, "{\"request\":{\"pem\":\"-----BEGIN CERTIFICATE-----\\ngarbage\\n-----END CERTIFICATE-----\\n\"}}",
      &out);
  CHECK(st != CLM_OK && st != CLM_INTERNAL && out == SENTINEL, "importing garbage PEM is a clean error");
  st = clm_import_certificates(h, sys, "{\"request\":{\"pem\":\"not a certificate at all\"}}", &out);
  CHECK(st != CLM_OK && st != CLM_INTERNAL, "importing text without PEM is a clean error");
  st = clm_import_certificates(h, sys, "{\"request\":{\"der_base64\":\"AAECAwQ=\"}}", &out);
  CHECK(st != CLM_OK && st != CLM_INTERNAL, "importing garbage DER is a clean error");
  st = clm_import_certificates(h, sys, "{\"request\":{\"der_base64\":\"%%%\"}}", &out);
  CHECK(st == CLM_INVALID_INPUT, "importing base64 that is not base64 is INVALID_INPUT");

  char *root = NULL;
  CHECK(clm_create_root_ca(h, sys, "{\"new\":{\"subject\":{\"common_name\":\"Bad Input Root\"}}}",
                           &root) == CLM_OK, "create a root CA");
  char *root_id = json_string(root, "id");
  char *request = fmt("{\"request\":{\"issuer_id\":\"%s\",\"validity_days\":30,"
                      "\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\ngarbage\\n"
                      "-----END CERTIFICATE REQUEST-----\"}}", root_id);
  st = clm_issue_certificate(h, sys, request, &out);
  CHECK(st != CLM_OK && st != CLM_INTERNAL && out == SENTINEL, "a garbage CSR is a clean error");
  free(request);
  request = fmt("{\"request\":{\"issuer_id\":\"%s\",\"validity_days\":30,\"csr\":\"\"}}", root_id);
  st = clm_issue_certificate(h, sys, request, &out);
  CHECK(st != CLM_OK && st != CLM_INTERNAL, "an empty CSR is a clean error");
  free(request);
  request = fmt("{\"request\":{\"issuer_id\":\"%s\",\"validity_days\":30,"
                "\"key_algorithm\":\"rot13\"}}", root_id);
  CHECK(clm_issue_certificate(h, sys, request, &out) == CLM_INVALID_INPUT,
        "an unknown key algorithm is INVALID_INPUT");
  free(request);
  out_of_range(h, sys, root_id);
  request = fmt("{\"request\":{\"pem\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\"}}");
  st = clm_import_certificates(h, sys, request, &out);
  CHECK(st != CLM_OK && st != CLM_INTERNAL, "a key where a certificate belongs is a clean error");
  free(request);
  CHECK(clm_create_policy(h, sys, "{\"new\":{\"policy_code\":\"P\",\"name\":\"P\","
                                  "\"rules\":\"{not json\"}}", &out) == CLM_INVALID_INPUT,
        "policy rules that are not JSON are INVALID_INPUT");
  CHECK(clm_validate_session(h, "{\"token\":\"clms_garbage\"}", (clm_actor **)&out) ==
          CLM_AUTHENTICATION, "a garbage session token is AUTHENTICATION");
  CHECK(clm_authenticate_api_key(h, "{\"key\":\"\"}", (clm_actor **)&out) != CLM_OK,
        "an empty API key is refused");
  CHECK(out == SENTINEL, "no failed call wrote its out-pointer");

  /* The generic entry point. */
  CHECK(clm_call(h, sys, "no_such_operation", NULL, NULL, NULL, &json, NULL) == CLM_INVALID_INPUT,
        "clm_call of an unknown operation is INVALID_INPUT");
  expect_field("clm_call of an unknown operation", CLM_INVALID_INPUT, "operation");
  CHECK(clm_call(h, sys, NULL, NULL, NULL, NULL, &json, NULL) == CLM_INVALID_INPUT,
        "clm_call with a NULL operation");
  CHECK(clm_call(h, sys, "\xff", NULL, NULL, NULL, &json, NULL) == CLM_INVALID_INPUT,
        "clm_call with an operation name that is not UTF-8");
  CHECK(clm_call(h, sys, "version", NULL, NULL, NULL, NULL, NULL) == CLM_INVALID_INPUT,
        "clm_call with a NULL result_json");
  CHECK(clm_call(NULL, sys, "version", NULL, NULL, NULL, &json, NULL) == CLM_INVALID_INPUT,
        "clm_call with a NULL clm");
  CHECK(clm_call(h, NULL, "list_users", NULL, NULL, NULL, &json, NULL) == CLM_INVALID_INPUT,
        "clm_call without the actor an operation needs");
  CHECK(clm_call(h, sys, "open", "{}", NULL, NULL, &json, NULL) == CLM_INVALID_INPUT,
        "clm_call of open (the constructor) is INVALID_INPUT");
  CHECK(json == SENTINEL, "no failed clm_call wrote its out-pointer");

  /* A closed handle. */
  CHECK(clm_close(h) == CLM_OK && clm_close(h) == CLM_OK, "close (twice)");
  every_operation("a closed handle", CLM_CLOSED, h, sys, "{}", 0, 0);
  clm_actor *after = SENTINEL;
  CHECK(clm_system_actor(h, &after) == CLM_CLOSED && after == SENTINEL,
        "system_actor after close is CLOSED");
  CHECK(clm_call(h, sys, "version", NULL, NULL, NULL, &json, NULL) == CLM_CLOSED,
        "clm_call after close is CLOSED");
  CHECK(clm_actor_json(sys, &json) == CLM_OK && strstr(json, "\"kind\":\"system\""),
        "an actor outlives its handle's close");
  clm_string_free(json);

  free(root_id);
  clm_string_free(root);
  clm_actor_free(sys);
  clm_handle_free(h);
  return finish();
}

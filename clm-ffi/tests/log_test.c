/*
 * clm_set_log_callback: clm's records reach a C callback (from whichever
 * thread emitted them), carry the operation's span with its outcome, never
 * the password the operations handled, and stop when the callback is unset.
 *
 *     cc -I include -o log_test log_test.c -L lib -lclm && ./log_test WORK_DIR
 */
#include <pthread.h>

#include "support.h"

#define PASSWORD "Log-Test-Pw-9f8e7d6c5b"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *records; /* every record, one per line */
static size_t records_len;
static int records_seen, debug_seen, bad_level_seen, user_data_ok;

static void on_log(clm_log_level level, const char *target, const char *message, void *user_data) {
  size_t add = strlen(target) + strlen(message) + 3;
  pthread_mutex_lock(&lock);
  char *grown = realloc(records, records_len + add);
  if (grown) {
    records = grown;
    records_len += (size_t)snprintf(records + records_len, add, "%s %s\n", target, message);
  }
  records_seen++;
  if (level == CLM_LOG_DEBUG) debug_seen++;
  if (level < CLM_LOG_ERROR || level > CLM_LOG_TRACE) bad_level_seen++;
  if (user_data == (void *)&records) user_data_ok++;
  pthread_mutex_unlock(&lock);
}

static int seen(const char *needle) {
  pthread_mutex_lock(&lock);
  int found = records && strstr(records, needle) != NULL;
  pthread_mutex_unlock(&lock);
  return found;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: log_test WORK_DIR\n");
    return 2;
  }
  records = calloc(1, 1);
  CHECK(clm_set_log_callback(on_log, &records, 9) == CLM_INVALID_INPUT, "a level out of range is refused");
  CHECK(clm_set_log_callback(on_log, &records, CLM_LOG_DEBUG) == CLM_OK, "set the log callback at DEBUG");

  clm_handle *h = NULL;
  clm_actor *sys = NULL;
  char *options = fmt("{\"sqlite_dir\":\"%s/data\",\"master_key_file\":\"%s/master.key\","
                      "\"create_master_key\":true}", argv[1], argv[1]);
  CHECK(clm_open(options, &h) == CLM_OK && h, "open");
  free(options);
  if (!h) return finish();
  CHECK(clm_system_actor(h, &sys) == CLM_OK, "system_actor");

  char *out = NULL;
  CHECK(clm_create_user(h, sys, "{\"new\":{\"username\":\"logan\",\"email\":\"logan@example.com\","
                                "\"password\":\"" PASSWORD "\"}}", &out) == CLM_OK,
        "create a user with a password");
  clm_string_free(out);
  out = NULL;
  CHECK(clm_authenticate(h, "{\"login\":\"logan\",\"password\":\"" PASSWORD "x\"}", &out) ==
            CLM_AUTHENTICATION,
        "a wrong password is refused");
  CHECK(clm_authenticate(h, "{\"login\":\"logan\",\"password\":\"" PASSWORD "\"}", &out) == CLM_OK,
        "log in");
  char *token = json_string(out, "token");
  clm_string_free(out);

  CHECK(seen("create_user{actor=system}: finished outcome=ok duration_ms="),
        "the operation's span arrived with its outcome");
  CHECK(seen("authenticate{}: finished outcome=authentication failed"), "a failed operation's outcome arrived");
  CHECK(seen("transaction{") && seen("ended=committed"), "transactions are traced");
  CHECK(debug_seen > 0 && bad_level_seen == 0, "levels are clm_log_level values");
  CHECK(user_data_ok == records_seen, "user_data comes back with every record");
  CHECK(!seen(PASSWORD), "the password is in no record");
  CHECK(token && *token && !seen(token), "the session token is in no record");
  free(token);

  CHECK(clm_set_log_callback(NULL, NULL, 0) == CLM_OK, "unset the callback");
  pthread_mutex_lock(&lock);
  int before = records_seen;
  pthread_mutex_unlock(&lock);
  CHECK(clm_create_user(h, sys, "{\"new\":{\"username\":\"quiet\",\"email\":\"quiet@example.com\"}}", &out) ==
            CLM_OK,
        "an operation after unsetting");
  clm_string_free(out);
  pthread_mutex_lock(&lock);
  int after = records_seen;
  pthread_mutex_unlock(&lock);
  CHECK(after == before, "no record after the callback is unset");

  CHECK(clm_close(h) == CLM_OK, "close");
  clm_actor_free(sys);
  clm_handle_free(h);
  free(records);
  return finish();
}

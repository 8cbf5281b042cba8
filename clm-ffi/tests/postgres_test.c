/*
 * libclm on PostgreSQL: open the two databases named by
 * CLM_TEST_SECURE_URL and CLM_TEST_CORE_URL (fresh databases the test
 * script creates and drops), make a CA, issue a certificate, read it back,
 * verify the audit chains. Without the variables it fails: the suite
 * always sets them.
 *
 *     CLM_TEST_SECURE_URL=postgres://... CLM_TEST_CORE_URL=postgres://... ./postgres_test WORK_DIR
 */
#include <time.h>
#include <unistd.h>

#include "support.h"

int main(int argc, char **argv) {
  const char *secure = getenv("CLM_TEST_SECURE_URL"), *core = getenv("CLM_TEST_CORE_URL");
  if (argc < 2 || !secure || !core) {
    fprintf(stderr, "usage: CLM_TEST_SECURE_URL=... CLM_TEST_CORE_URL=... postgres_test WORK_DIR\n");
    return 2;
  }
  /* A fixed test key: base64 of 32 bytes. */
  char *options = fmt("{\"secure_url\":\"%s\",\"core_url\":\"%s\","
                      "\"master_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\","
                      "\"max_connections\":4}", secure, core);
  clm_handle *h = NULL;
  CHECK(clm_open(options, &h) == CLM_OK && h, "open two PostgreSQL databases");
  free(options);
  if (!h) return finish();
  clm_actor *sys = NULL;
  CHECK(clm_system_actor(h, &sys) == CLM_OK, "system actor");

  /* Unique names: the suite runs this program twice on the same databases. */
  char suffix[32];
  snprintf(suffix, sizeof suffix, "%ld-%d", (long)time(NULL), (int)getpid());
  char *root = NULL, *issued = NULL, *fetched = NULL, *chain = NULL;
  char *arguments = fmt("{\"new\":{\"subject\":{\"common_name\":\"PG Root %s\"},"
                        "\"key_algorithm\":\"ecdsa_p256\"}}", suffix);
  CHECK(clm_create_root_ca(h, sys, arguments, &root) == CLM_OK, "create_root_ca on PostgreSQL");
  free(arguments);
  char *root_id = json_string(root, "id");
  arguments = fmt("{\"request\":{\"issuer_id\":\"%s\",\"validity_days\":30,"
                  "\"subject\":{\"common_name\":\"pg.example.com\"},"
                  "\"sans\":[{\"type\":\"DNS\",\"value\":\"pg.example.com\"}]}}",
                  root_id ? root_id : "");
  CHECK(clm_issue_certificate(h, sys, arguments, &issued) == CLM_OK &&
          strstr(issued, "\"outcome\":\"issued\""), "issue_certificate on PostgreSQL");
  free(arguments);
  char *issued_id = json_string(issued, "id");
  arguments = fmt("{\"id\":\"%s\"}", issued_id ? issued_id : "");
  CHECK(clm_get_certificate(h, sys, arguments, &fetched) == CLM_OK && strstr(fetched, "pg.example.com"),
        "get_certificate reads it back");
  free(arguments);
  char *pem = json_string(issued, "certificate_pem"), *root_pem = json_string(root, "certificate_pem");
  if (pem && root_pem) {
    write_file(argv[1], "pg-root.pem", root_pem);
    write_file(argv[1], "pg-leaf.pem", pem);
    CHECK(sh("openssl verify -CAfile %s/pg-root.pem %s/pg-leaf.pem >/dev/null", argv[1], argv[1]) == 0,
          "openssl verify accepts the certificate");
  }
  CHECK(clm_verify_audit_chain(h, sys, "{\"log\":\"secure\"}", &chain) == CLM_OK &&
          strstr(chain, "\"broken\":null"), "the secure audit chain is intact");
  clm_string_free(chain);
  chain = NULL;
  CHECK(clm_verify_audit_chain(h, sys, "{\"log\":\"core\"}", &chain) == CLM_OK &&
          strstr(chain, "\"broken\":null"), "the core audit chain is intact");

  CHECK(clm_close(h) == CLM_OK, "close");
  free(root_id); free(issued_id); free(pem); free(root_pem);
  clm_string_free(root); clm_string_free(issued); clm_string_free(fetched); clm_string_free(chain);
  clm_actor_free(sys);
  clm_handle_free(h);
  return finish();
}

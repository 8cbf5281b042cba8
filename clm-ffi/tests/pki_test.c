/*
 * libclm as a C program uses it: open a SQLite directory, a root and an
 * intermediate CA, a server certificate with its exported key, a revocation
 * and a CRL (checked with the openssl command), the audit chains, and bad
 * input (NULL, invalid UTF-8, garbage JSON/PEM/ids, a closed handle).
 *
 *     cc -o pki_test pki_test.c -I include -L lib -lclm && ./pki_test WORK_DIR
 *
 * Prints one line per check and "N passed, N failed"; exits 1 on a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clm.h"

static int passed, failed;
static char work[512];

#define CHECK(cond, what)                                                   \
  do {                                                                      \
    if (cond) {                                                             \
      passed++;                                                             \
      printf("ok   %s\n", what);                                            \
    } else {                                                                \
      failed++;                                                             \
      const char *m = clm_last_error_message();                             \
      printf("FAIL %s (line %d; last error: %s)\n", what, __LINE__,         \
             m ? m : "none");                                               \
    }                                                                       \
  } while (0)

/* The string value of the first "key": "..." in a JSON text, unescaped
 * (enough for the records' ids and PEM fields). Caller frees. */
static char *json_field(const char *json, const char *key) {
  char needle[128];
  snprintf(needle, sizeof needle, "\"%s\":\"", key);
  const char *at = strstr(json, needle);
  if (!at) return NULL;
  at += strlen(needle);
  char *out = malloc(strlen(at) + 1), *w = out;
  for (const char *r = at; *r && *r != '"'; r++) {
    if (*r == '\\' && r[1]) {
      r++;
      *w++ = *r == 'n' ? '\n' : *r;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  return out;
}

static void write_file(const char *name, const char *text) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", work, name);
  FILE *f = fopen(path, "w");
  if (!f) { perror(path); exit(2); }
  fputs(text, f);
  fclose(f);
}

static int sh(const char *fmt, const char *a, const char *b) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  return system(cmd);
}

/* Issues a certificate; returns the record JSON or NULL. */
static char *issue(clm_handle *h, const clm_actor *a, const char *issuer_id,
                   const char *policy_id, const char *cn) {
  char req[1024];
  snprintf(req, sizeof req,
           "{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":90,"
           "\"subject\":{\"common_name\":\"%s\"},"
           "\"sans\":[{\"type\":\"DNS\",\"value\":\"%s\"},{\"type\":\"IP\",\"value\":\"127.0.0.1\"}],"
           "\"kind\":\"tls_server\",\"key_algorithm\":\"ecdsa_p256\"}",
           issuer_id, policy_id, cn, cn);
  char *out = NULL;
  return clm_issue_certificate(h, a, req, &out) == CLM_OK ? out : NULL;
}

static void bad_input_before_open(void) {
  clm_handle *h = (clm_handle *)0x1;
  CHECK(clm_open(NULL, &h) == CLM_INVALID_INPUT && h == (clm_handle *)0x1,
        "clm_open(NULL) is INVALID_INPUT and leaves the out-pointer");
  CHECK(clm_last_error_message() != NULL, "a failure leaves a message");
  CHECK(clm_open("{\"sqlite_dir\":\"\xff\xfe\"}", &h) == CLM_INVALID_INPUT,
        "invalid UTF-8 is INVALID_INPUT");
  CHECK(clm_open("not json", &h) == CLM_INVALID_INPUT, "garbage JSON is INVALID_INPUT");
  CHECK(clm_open("{\"sqlite_dir\":\"/tmp/x\"}", &h) == CLM_INVALID_INPUT,
        "no master key is INVALID_INPUT");
  CHECK(clm_open("{\"sqlite_dir\":\"/tmp/x\",\"master_key\":\"short\"}", &h) == CLM_CONFIGURATION,
        "a bad master key is CONFIGURATION");
  CHECK(clm_open("{\"sqlite_dir\":\"/tmp/x\",\"bogus\":1}", &h) == CLM_INVALID_INPUT,
        "an unknown option is INVALID_INPUT");
  CHECK(clm_open("{}", NULL) == CLM_INVALID_INPUT, "a NULL out-pointer is INVALID_INPUT");
  CHECK(strcmp(clm_error_code_name(CLM_CLOSED), "CLOSED") == 0, "status names");
  CHECK(clm_version() && strlen(clm_version()) > 0, "clm_version");
  clm_string_free(NULL);
  clm_actor_free(NULL);
  clm_handle_free(NULL);
  CHECK(1, "every _free accepts NULL");
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: pki_test WORK_DIR\n"); return 2; }
  snprintf(work, sizeof work, "%s", argv[1]);
  bad_input_before_open();

  char options[2048];
  snprintf(options, sizeof options,
           "{\"sqlite_dir\":\"%s/data\",\"master_key_file\":\"%s/master.key\","
           "\"create_master_key\":true}", work, work);
  clm_handle *h = NULL;
  CHECK(clm_open(options, &h) == CLM_OK && h, "open a SQLite directory, creating the key file");
  if (!h) goto done;
  CHECK(clm_last_error_message() == NULL, "success clears the message");

  clm_actor *sys = NULL;
  CHECK(clm_system_actor(h, &sys) == CLM_OK, "system actor");

  char *org = NULL, *user = NULL, *login = NULL, *desc = NULL;
  CHECK(clm_create_organization(h, sys, "{\"org_code\":\"ACME\",\"name\":\"Acme\"}", &org) == CLM_OK,
        "create_organization");
  char *org_id = org ? json_field(org, "id") : NULL;
  char user_json[512];
  snprintf(user_json, sizeof user_json,
           "{\"username\":\"alice\",\"email\":\"alice@example.com\","
           "\"password\":\"correct horse battery staple\",\"organization_id\":\"%s\"}",
           org_id ? org_id : "");
  CHECK(clm_create_user(h, sys, user_json, &user) == CLM_OK && strstr(user, "\"alice\""),
        "create_user");
  CHECK(user && !strstr(user, "password_hash"), "the user record holds no password hash");
  CHECK(clm_authenticate(h, "alice", "wrong password!", NULL, &login) == CLM_AUTHENTICATION
          && login == NULL, "a wrong password is AUTHENTICATION");
  CHECK(clm_authenticate(h, "alice", "correct horse battery staple", NULL, &login) == CLM_OK,
        "authenticate");
  char *token = login ? json_field(login, "token") : NULL;
  clm_actor *alice = NULL;
  CHECK(token && clm_validate_session(h, token, &alice) == CLM_OK, "validate_session");
  CHECK(alice && clm_actor_json(alice, &desc) == CLM_OK && strstr(desc, "\"kind\":\"user\""),
        "the session's actor is the user");
  CHECK(clm_validate_session(h, "clms_garbage", &alice) == CLM_AUTHENTICATION,
        "a garbage token is AUTHENTICATION");

  char *policy = NULL;
  CHECK(clm_create_policy(h, sys,
          "{\"policy_code\":\"TLS\",\"name\":\"TLS\",\"rules\":{\"max_validity_days\":397,"
          "\"allowed_domains\":[\"example.com\"],\"allow_subdomains\":true}}", &policy) == CLM_OK,
        "create_policy");
  char *policy_id = policy ? json_field(policy, "id") : NULL;

  char *root = NULL, *inter = NULL;
  CHECK(clm_create_root_ca(h, sys,
          "{\"subject\":{\"common_name\":\"Test Root\",\"organization\":\"Acme\",\"country\":\"US\"},"
          "\"key_algorithm\":\"ecdsa_p384\",\"path_len\":1}", &root) == CLM_OK, "create_root_ca");
  char *root_id = root ? json_field(root, "id") : NULL;
  CHECK(root_id && clm_create_intermediate_ca(h, sys, root_id,
          "{\"subject\":{\"common_name\":\"Test Issuing CA\"},\"path_len\":0,"
          "\"validity_days\":1825}", &inter) == CLM_OK, "create_intermediate_ca");
  char *inter_id = inter ? json_field(inter, "id") : NULL;
  if (!root_id || !inter_id || !policy_id) goto cleanup;

  char *server = issue(h, sys, inter_id, policy_id, "server.example.com");
  CHECK(server != NULL, "issue_certificate (clm generates the key)");
  char *other = issue(h, sys, inter_id, policy_id, "old.example.com");
  CHECK(other != NULL, "issue a second certificate");
  if (!server || !other) goto cleanup;
  char *server_id = json_field(server, "id"), *other_id = json_field(other, "id");

  char *root_pem = json_field(root, "certificate_pem"), *inter_pem = json_field(inter, "certificate_pem");
  char *server_pem = json_field(server, "certificate_pem");
  write_file("root.pem", root_pem);
  write_file("intermediate.pem", inter_pem);
  write_file("server.pem", server_pem);
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "openssl verify -CAfile %s/root.pem -untrusted %s/intermediate.pem %s/server.pem >/dev/null",
           work, work, work);
  CHECK(system(cmd) == 0, "openssl verify accepts the server certificate");

  char *key = NULL;
  CHECK(clm_export_private_key(h, sys, server_id, &key) == CLM_OK &&
          strstr(key, "BEGIN PRIVATE KEY"), "export_private_key gives PKCS#8 PEM");
  if (key) {
    write_file("server.key", key);
    CHECK(sh("test \"$(openssl pkey -in %s/server.key -pubout)\" = "
             "\"$(openssl x509 -in %s/server.pem -noout -pubkey)\"", work, work) == 0,
          "the exported key matches the certificate");
  }
  char *nokey = (char *)0x1;
  CHECK(clm_export_private_key(h, sys, "not-a-uuid", &nokey) == CLM_INVALID_INPUT &&
          nokey == (char *)0x1, "a garbage id is INVALID_INPUT, out-pointer untouched");
  CHECK(clm_export_private_key(h, sys, "00000000-0000-0000-0000-000000000000", &nokey) ==
          CLM_NOT_FOUND, "an unknown certificate is NOT_FOUND");

  char *revocation = NULL, *crl = NULL;
  CHECK(clm_revoke_certificate(h, sys, other_id, "key_compromise", "test", &revocation) == CLM_OK,
        "revoke_certificate");
  CHECK(clm_revoke_certificate(h, sys, other_id, "no_such_reason", NULL, &revocation) ==
          CLM_INVALID_INPUT, "an unknown reason is INVALID_INPUT");
  CHECK(clm_generate_crl(h, sys, inter_id, 0, &crl) == CLM_OK, "generate_crl");
  if (crl) {
    char *crl_pem = json_field(crl, "pem");
    write_file("crl.pem", crl_pem);
    CHECK(sh("openssl crl -in %s/crl.pem -CAfile %s/intermediate.pem -noout 2>&1 | grep -q 'verify OK'",
             work, work) == 0, "openssl crl -verify accepts the CRL");
    char *serial = json_field(other, "serial_number");
    char upper[256];
    size_t i = 0;
    for (; serial && serial[i] && i < sizeof upper - 1; i++)
      upper[i] = (char)(serial[i] >= 'a' && serial[i] <= 'f' ? serial[i] - 32 : serial[i]);
    upper[i] = '\0';
    CHECK(sh("openssl crl -in %s/crl.pem -noout -text | tr -d ':' | grep -q %s", work, upper) == 0,
          "the CRL lists the revoked serial");
    free(serial);
    free(crl_pem);
  }

  char *garbage = NULL;
  char req[512];
  snprintf(req, sizeof req, "{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":30,"
           "\"csr\":\"-----BEGIN CERTIFICATE REQUEST-----\\ngarbage\\n-----END CERTIFICATE REQUEST-----\"}",
           inter_id, policy_id);
  clm_status st = clm_issue_certificate(h, sys, req, &garbage);
  CHECK(st != CLM_OK && st != CLM_INTERNAL && garbage == NULL, "a garbage CSR is a clean error");
  CHECK(clm_issue_certificate(h, NULL, req, &garbage) == CLM_INVALID_INPUT, "a NULL actor is INVALID_INPUT");
  CHECK(clm_issue_certificate(h, sys, "{\"issuer_id\":5}", &garbage) == CLM_INVALID_INPUT,
        "a wrong JSON type is INVALID_INPUT");

  char *secure = NULL, *core = NULL;
  CHECK(clm_verify_audit_chain(h, sys, "secure", &secure) == CLM_OK && strstr(secure, "\"broken\":null"),
        "the secure audit chain is intact");
  CHECK(clm_verify_audit_chain(h, sys, "core", &core) == CLM_OK && strstr(core, "\"broken\":null"),
        "the core audit chain is intact");
  CHECK(clm_verify_audit_chain(h, alice, "core", &core) == CLM_PERMISSION_DENIED,
        "a user without the permission is PERMISSION_DENIED");

  CHECK(clm_close(h) == CLM_OK && clm_close(h) == CLM_OK, "close (twice)");
  char *after = NULL;
  clm_actor *after_actor = NULL;
  CHECK(clm_create_user(h, sys, user_json, &after) == CLM_CLOSED && after == NULL,
        "a call after close is CLOSED");
  CHECK(clm_system_actor(h, &after_actor) == CLM_CLOSED, "system_actor after close is CLOSED");

  clm_string_free(key);
  clm_string_free(revocation);
  clm_string_free(crl);
  clm_string_free(secure);
  clm_string_free(core);
  free(root_pem); free(inter_pem); free(server_pem); free(server_id); free(other_id);
  clm_string_free(server);
  clm_string_free(other);
cleanup:
  free(org_id); free(token); free(policy_id); free(root_id); free(inter_id);
  clm_string_free(org); clm_string_free(user); clm_string_free(login); clm_string_free(desc);
  clm_string_free(policy); clm_string_free(root); clm_string_free(inter);
  clm_actor_free(alice);
  clm_actor_free(sys);
  clm_handle_free(h);
done:
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

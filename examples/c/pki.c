/*
 * A small internal PKI through libclm, as examples/pki.rs does it: a root
 * and an intermediate CA, a TLS server certificate (DNS server.example.com
 * + IP 127.0.0.1), a TLS client certificate, one revoked certificate, and
 * the intermediate's CRL.
 *
 *     cc -o pki examples/c/pki.c $(pkg-config --cflags --libs clm) && ./pki OUT_DIR
 *
 * (after scripts/install PREFIX, with PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
 * and LD_LIBRARY_PATH=PREFIX/lib unless PREFIX is a system one). Data lives in SQLite under OUT_DIR unless
 * CLM_SECURE_DATABASE_URL and CLM_CORE_DATABASE_URL are set. With no master
 * key configured (CLM_MASTER_KEY / CLM_MASTER_KEY_FILE) it uses
 * OUT_DIR/master.key, creating it on first run. Writes into OUT_DIR:
 * root.pem, intermediate.pem, server.pem, server.key, client.pem,
 * client.key, chain.pem, crl.pem. Check them with:
 *
 *     openssl verify -CAfile OUT_DIR/root.pem -untrusted OUT_DIR/intermediate.pem OUT_DIR/server.pem
 *     openssl crl -in OUT_DIR/crl.pem -CAfile OUT_DIR/intermediate.pem -noout -text
 *
 * Results cross as JSON text; a real program would use a JSON library
 * (cJSON, jansson). This one reads the few string fields it needs with a
 * small helper, json_string(), to stay self-contained.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clm.h"

static const char *out_dir;

/* The decoded value of the first string field "key" in a JSON text, or
 * NULL. Handles the escapes JSON uses (\n, \", \\, \/, \uXXXX for ASCII).
 * The caller frees it with free(). */
static char *json_string(const char *json, const char *key) {
  char needle[128];
  snprintf(needle, sizeof needle, "\"%s\":\"", key);
  const char *at = json ? strstr(json, needle) : NULL;
  if (!at) return NULL;
  at += strlen(needle);
  char *out = malloc(strlen(at) + 1), *w = out;
  if (!out) return NULL;
  for (const char *r = at; *r && *r != '"'; r++) {
    if (*r != '\\' || !r[1]) {
      *w++ = *r;
      continue;
    }
    r++;
    switch (*r) {
      case 'n': *w++ = '\n'; break;
      case 't': *w++ = '\t'; break;
      case 'r': *w++ = '\r'; break;
      case 'u': {
        unsigned code = 0;
        if (sscanf(r + 1, "%4x", &code) == 1 && strlen(r + 1) >= 4) r += 4;
        *w++ = code < 0x80 ? (char)code : '?';
        break;
      }
      default: *w++ = *r; /* \" \\ \/ */
    }
  }
  *w = '\0';
  return out;
}

/* A string as a JSON string literal (quotes included). Caller frees. */
static char *json_quote(const char *text) {
  char *out = malloc(strlen(text) * 6 + 3), *w = out;
  if (!out) return NULL;
  *w++ = '"';
  for (const unsigned char *r = (const unsigned char *)text; *r; r++) {
    if (*r == '"' || *r == '\\') {
      *w++ = '\\';
      *w++ = (char)*r;
    } else if (*r < 0x20) {
      w += sprintf(w, "\\u%04x", *r);
    } else {
      *w++ = (char)*r;
    }
  }
  *w++ = '"';
  *w = '\0';
  return out;
}

/* Reports a failed call and exits: the status name and the last message. */
static void check(clm_status status, const char *what) {
  if (status == CLM_OK) return;
  const char *message = clm_last_error_message();
  fprintf(stderr, "pki failed: %s: %s [%s]\n", what, message ? message : "?",
          clm_error_code_name(status));
  exit(1);
}

static void write_file(const char *name, const char *contents, int secret) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(contents, f) < 0 || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
  /* Private keys are readable by the owner only. */
  if (secret && chmod(path, 0600) != 0) {
    perror(path);
    exit(1);
  }
  printf("wrote         %s\n", path);
}

/* The open options: the databases and the master key, from the
 * environment as examples/pki.rs reads them. Caller frees. */
static char *open_options(void) {
  const char *secure = getenv("CLM_SECURE_DATABASE_URL");
  const char *core = getenv("CLM_CORE_DATABASE_URL");
  const char *key = getenv("CLM_MASTER_KEY");
  const char *key_file = getenv("CLM_MASTER_KEY_FILE");
  char data_dir[4096], default_key[4096];
  snprintf(data_dir, sizeof data_dir, "%s/data", out_dir);
  snprintf(default_key, sizeof default_key, "%s/master.key", out_dir);

  char *database_part, *key_part;
  if (secure && core) {
    char *s = json_quote(secure), *c = json_quote(core);
    database_part = malloc(strlen(s) + strlen(c) + 64);
    sprintf(database_part, "\"secure_url\":%s,\"core_url\":%s", s, c);
    free(s);
    free(c);
  } else {
    char *d = json_quote(data_dir);
    database_part = malloc(strlen(d) + 32);
    sprintf(database_part, "\"sqlite_dir\":%s", d);
    free(d);
  }
  if (key && *key) {
    char *k = json_quote(key);
    key_part = malloc(strlen(k) + 32);
    sprintf(key_part, "\"master_key\":%s", k);
    free(k);
  } else if (key_file && *key_file) {
    char *k = json_quote(key_file);
    key_part = malloc(strlen(k) + 32);
    sprintf(key_part, "\"master_key_file\":%s", k);
    free(k);
  } else {
    printf("no master key configured: %s %s\n",
           access(default_key, F_OK) == 0 ? "using" : "creating", default_key);
    char *k = json_quote(default_key);
    key_part = malloc(strlen(k) + 64);
    sprintf(key_part, "\"master_key_file\":%s,\"create_master_key\":true", k);
    free(k);
  }
  char *options = malloc(strlen(database_part) + strlen(key_part) + 8);
  sprintf(options, "{%s,%s}", database_part, key_part);
  free(database_part);
  free(key_part);
  return options;
}

/* Issues a certificate under the policy with a key clm generates; returns
 * the certificate record (the "certificate" of the issuance outcome). */
static char *issue(clm_handle *clm, const clm_actor *system, const char *issuer_id,
                   const char *policy_id, const char *cn, const char *kind, int with_ip) {
  char arguments[2048];
  snprintf(arguments, sizeof arguments,
           "{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":90,"
           "\"subject\":{\"common_name\":\"%s\"},\"sans\":[{\"type\":\"DNS\",\"value\":\"%s\"}%s],"
           "\"kind\":\"%s\",\"key_algorithm\":\"ecdsa_p256\"}}",
           issuer_id, policy_id, cn, cn, with_ip ? ",{\"type\":\"IP\",\"value\":\"127.0.0.1\"}" : "",
           kind);
  char *outcome = NULL;
  check(clm_issue_certificate(clm, system, arguments, &outcome), "issue_certificate");
  if (!strstr(outcome, "\"outcome\":\"issued\"")) {
    fprintf(stderr, "pki failed: %s went to approval\n", cn);
    exit(1);
  }
  return outcome;
}

static char *private_key(clm_handle *clm, const clm_actor *system, const char *id) {
  char arguments[256];
  snprintf(arguments, sizeof arguments, "{\"certificate_id\":\"%s\"}", id);
  char *pem = NULL;
  check(clm_export_private_key(clm, system, arguments, &pem), "export_private_key");
  return pem;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: pki OUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  if (mkdir(out_dir, 0755) != 0 && access(out_dir, W_OK) != 0) {
    perror(out_dir);
    return 1;
  }

  char *options = open_options();
  clm_handle *clm = NULL;
  printf("opening clm:  %s\n", getenv("CLM_SECURE_DATABASE_URL") ? "PostgreSQL" : "SQLite");
  clm_status opened = clm_open(options, &clm);
  free(options);
  check(opened, "open");
  clm_actor *system = NULL;
  check(clm_system_actor(clm, &system), "system_actor");

  /* Runs are repeatable against the same database: names carry a suffix. */
  char suffix[16];
  /* Nanoseconds and the pid apart: time ^ pid repeats for two runs a
   * second and a pid apart (both even), and the policy code must not. */
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  srand((unsigned)now.tv_nsec ^ ((unsigned)getpid() << 16) ^ (unsigned)now.tv_sec);
  snprintf(suffix, sizeof suffix, "%08x", (unsigned)rand());

  char arguments[2048];
  char *root = NULL, *intermediate = NULL, *policy = NULL;
  snprintf(arguments, sizeof arguments,
           "{\"new\":{\"subject\":{\"common_name\":\"Example Root CA %s\","
           "\"organization\":\"Example Inc.\",\"country\":\"US\"},"
           "\"key_algorithm\":\"ecdsa_p384\",\"validity_days\":3650,\"path_len\":1,"
           "\"ca_issuers_urls\":[\"http://pki.example.com/root.crt\"],"
           "\"crl_distribution_points\":[\"http://pki.example.com/root.crl\"]}}",
           suffix);
  check(clm_create_root_ca(clm, system, arguments, &root), "create_root_ca");
  char *root_id = json_string(root, "id");
  char *root_dn = json_string(root, "subject_dn");
  printf("root CA       %s (%s)\n", root_dn, root_id);

  snprintf(arguments, sizeof arguments,
           "{\"issuer_id\":\"%s\",\"new\":{\"subject\":{\"common_name\":\"Example Issuing CA %s\","
           "\"organization\":\"Example Inc.\",\"country\":\"US\"},"
           "\"key_algorithm\":\"ecdsa_p256\",\"validity_days\":1825,\"path_len\":0,"
           "\"crl_distribution_points\":[\"http://pki.example.com/issuing.crl\"],"
           "\"ca_issuers_urls\":[\"http://pki.example.com/issuing.crt\"]}}",
           root_id, suffix);
  check(clm_create_intermediate_ca(clm, system, arguments, &intermediate),
        "create_intermediate_ca");
  char *intermediate_id = json_string(intermediate, "id");
  char *intermediate_dn = json_string(intermediate, "subject_dn");
  printf("intermediate  %s (%s)\n", intermediate_dn, intermediate_id);

  snprintf(arguments, sizeof arguments,
           "{\"new\":{\"policy_code\":\"INTERNAL-TLS-%s\",\"name\":\"Internal TLS\","
           "\"rules\":{\"max_validity_days\":397,\"allowed_domains\":[\"example.com\"],"
           "\"allow_subdomains\":true,\"allowed_ip_ranges\":[\"127.0.0.0/8\"],"
           "\"allowed_algorithms\":[\"ECDSA\",\"RSA\"]}}}",
           suffix);
  check(clm_create_policy(clm, system, arguments, &policy), "create_policy");
  char *policy_id = json_string(policy, "id");
  char *policy_code = json_string(policy, "policy_code");
  printf("policy        %s\n", policy_code);

  char *server = issue(clm, system, intermediate_id, policy_id, "server.example.com",
                       "tls_server", 1);
  char *server_id = json_string(server, "id"), *server_serial = json_string(server, "serial_number");
  printf("server        CN=server.example.com serial %s\n", server_serial);
  char *client = issue(clm, system, intermediate_id, policy_id, "client.example.com",
                       "tls_client", 0);
  char *client_id = json_string(client, "id"), *client_serial = json_string(client, "serial_number");
  printf("client        CN=client.example.com serial %s\n", client_serial);
  char *retired = issue(clm, system, intermediate_id, policy_id, "retired.example.com",
                        "tls_server", 0);
  char *retired_id = json_string(retired, "id"), *retired_serial = json_string(retired, "serial_number");

  char *revocation = NULL;
  snprintf(arguments, sizeof arguments,
           "{\"id\":\"%s\",\"reason\":\"key_compromise\","
           "\"comment\":\"pki example: a compromised key\"}",
           retired_id);
  check(clm_revoke_certificate(clm, system, arguments, &revocation), "revoke_certificate");
  printf("revoked       CN=retired.example.com serial %s (key_compromise)\n", retired_serial);

  char *crl = NULL;
  snprintf(arguments, sizeof arguments, "{\"issuer_id\":\"%s\"}", intermediate_id);
  check(clm_generate_crl(clm, system, arguments, &crl), "generate_crl");
  printf("CRL           generated\n");
  /* Generation stores the CRL; serving reads the latest of its scope. */
  char *served_crl = NULL;
  check(clm_latest_crl(clm, system, arguments, &served_crl), "latest_crl");
  char *crl_pem = json_string(served_crl, "pem");

  char *root_pem = json_string(root, "certificate_pem");
  char *intermediate_pem = json_string(intermediate, "certificate_pem");
  char *server_pem = json_string(server, "certificate_pem");
  char *client_pem = json_string(client, "certificate_pem");
  char *server_key = private_key(clm, system, server_id);
  char *client_key = private_key(clm, system, client_id);
  write_file("root.pem", root_pem, 0);
  write_file("intermediate.pem", intermediate_pem, 0);
  write_file("server.pem", server_pem, 0);
  write_file("server.key", server_key, 1);
  write_file("client.pem", client_pem, 0);
  write_file("client.key", client_key, 1);
  char *chain = malloc(strlen(server_pem) + strlen(intermediate_pem) + 1);
  sprintf(chain, "%s%s", server_pem, intermediate_pem);
  write_file("chain.pem", chain, 0);
  write_file("crl.pem", crl_pem, 0);

  /* Keys are freed with clm_string_free, which wipes them. */
  clm_string_free(server_key);
  clm_string_free(client_key);
  free(chain);
  free(root_pem); free(intermediate_pem); free(server_pem); free(client_pem); free(crl_pem);
  free(root_id); free(root_dn); free(intermediate_id); free(intermediate_dn);
  free(policy_id); free(policy_code);
  free(server_id); free(server_serial); free(client_id); free(client_serial);
  free(retired_id); free(retired_serial);
  clm_string_free(root); clm_string_free(intermediate); clm_string_free(policy);
  clm_string_free(server); clm_string_free(client); clm_string_free(retired);
  clm_string_free(revocation); clm_string_free(crl); clm_string_free(served_crl);
  clm_actor_free(system);
  check(clm_close(clm), "close");
  clm_handle_free(clm);
  return 0;
}

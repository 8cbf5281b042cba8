/*
 * libclm as a C program uses it, one group of operations after another on
 * a SQLite directory: identity (users, authenticate, sessions, API keys),
 * roles and organizations, policies, CAs, issuance, a CSR made by clm and
 * issued, import, inventory search, revocation and holds, CRLs, renewal,
 * data key rotation with a progress callback, workflows and approvals,
 * notifications, the lifecycle run, audit events and chain verification,
 * and the generic clm_call. Certificates and CRLs are checked with openssl.
 *
 *     cc -I include -o api_test api_test.c -L lib -lclm && ./api_test WORK_DIR
 */
#include <stdint.h>

#include "support.h"

static clm_handle *h;
static clm_actor *sys;
static const char *work;

/* Everything a call returned, freed at the end (the library's strings with
 * clm_string_free, the test's own with free). */
static char *library_strings[512], *own_strings[512];
static size_t library_count, own_count;

static char *keep(char *text) {
  if (text && library_count < 512) library_strings[library_count++] = text;
  return text;
}

static char *own(char *text) {
  if (text && own_count < 512) own_strings[own_count++] = text;
  return text;
}

/* A string field of a JSON result, kept for the final free. */
static char *field(const char *json, const char *key) { return own(json_string(json, key)); }

typedef clm_status (*acting_op)(const clm_handle *, const clm_actor *, const char *, char **);

/* Runs an operation that takes an actor and returns JSON or text, with
 * printf-built arguments. Returns the result, or NULL (and a FAIL line
 * when `what` is not NULL). */
static char *call(const char *what, acting_op op, const clm_actor *actor, const char *format, ...) {
  char arguments[8192];
  va_list args;
  va_start(args, format);
  vsnprintf(arguments, sizeof arguments, format, args);
  va_end(args);
  char *out = NULL;
  clm_status status = op(h, actor, format ? arguments : NULL, &out);
  if (what) CHECK(status == CLM_OK && out, what);
  return status == CLM_OK ? keep(out) : NULL;
}

/* The status of an operation that returns JSON or text. */
static clm_status status_of(acting_op op, const clm_actor *actor, const char *arguments) {
  char *out = NULL;
  clm_status status = op(h, actor, arguments, &out);
  clm_string_free(out);
  return status;
}

static int progress_calls;
static int progress_ok;

static int import_progress_calls;

static void on_import_progress(const char *progress_json, void *user_data) {
  if (user_data == (void *)&import_progress_calls && strstr(progress_json, "\"certificates_read\":"))
    import_progress_calls++;
}

static void on_progress(const char *progress_json, void *user_data) {
  progress_calls++;
  if (user_data == (void *)&progress_calls && strstr(progress_json, "\"rotated\":") &&
      strstr(progress_json, "\"total\":"))
    progress_ok++;
}

/* ---- identity ------------------------------------------------------------ */
static char *alice_id, *org_id;
static clm_actor *alice, *api_actor, *approver;

static void identity(void) {
  char *org = call("create_organization", clm_create_organization, sys,
                   "{\"new\":{\"org_code\":\"ACME\",\"name\":\"Acme\"}}");
  org_id = field(org, "id");
  char *user = call("create_user", clm_create_user, sys,
                    "{\"new\":{\"username\":\"alice\",\"email\":\"alice@example.com\","
                    "\"password\":\"correct horse battery staple\",\"organization_id\":\"%s\"}}",
                    org_id);
  CHECK(user && !strstr(user, "password_hash") && !strstr(user, "correct horse"),
        "the user record holds no password or hash");
  alice_id = field(user, "id");
  CHECK(call(NULL, clm_get_user, sys, "{\"id\":\"%s\"}", alice_id) != NULL, "get_user");
  CHECK(call(NULL, clm_get_user_by_username, sys, "{\"username\":\"alice\"}") != NULL,
        "get_user_by_username");
  char *users = call("list_users", clm_list_users, sys, "{\"page\":{\"limit\":10}}");
  CHECK(users && strstr(users, "\"items\":[") && strstr(users, "\"alice\""), "list_users pages");
  char *updated = call("update_user", clm_update_user, sys,
                       "{\"id\":\"%s\",\"update\":{\"display_name\":\"Alice A.\"}}", alice_id);
  CHECK(updated && strstr(updated, "Alice A."), "update_user changed the display name");

  /* Alice may manage her own API keys. */
  char *role = call("a role for API keys", clm_create_role, sys,
                    "{\"new\":{\"role_code\":\"KEYHOLDER\",\"role_name\":\"Key holder\","
                    "\"permissions\":{\"api_keys\":[\"create\",\"read\",\"revoke\"],"
                    "\"certificates\":[\"read\"]}}}");
  char *role_id = field(role, "id");
  CHECK(call(NULL, clm_assign_role, sys, "{\"user_id\":\"%s\",\"role_id\":\"%s\"}", alice_id,
             role_id) != NULL, "assign the role to alice");

  char *login = NULL;
  CHECK(clm_authenticate(h, "{\"login\":\"alice\",\"password\":\"wrong password!!\"}", &login) ==
          CLM_AUTHENTICATION && login == NULL, "a wrong password is AUTHENTICATION");
  CHECK(clm_authenticate(h, "{\"login\":\"alice\",\"password\":\"correct horse battery staple\","
                            "\"user_agent\":\"api_test\"}", &login) == CLM_OK,
        "authenticate");
  keep(login);
  char *token = field(login, "token");
  char *arguments = own(fmt("{\"token\":\"%s\"}", token ? token : ""));
  CHECK(clm_validate_session(h, arguments, &alice) == CLM_OK && alice, "validate_session");
  char *description = NULL;
  CHECK(alice && clm_actor_json(alice, &description) == CLM_OK &&
          strstr(description, "\"kind\":\"user\"") && strstr(description, alice_id),
        "the session's actor is alice");
  keep(description);
  CHECK(clm_list_users(h, alice, NULL, &description) == CLM_PERMISSION_DENIED,
        "alice without a role may not list users");

  char *created = NULL;
  CHECK(clm_create_api_key(h, alice, own(fmt("{\"new\":{\"name\":\"ci\",\"organization_id\":\"%s\","
                                             "\"scopes\":{\"certificates\":[\"read\"]}}}", org_id)),
                           &created) == CLM_OK, "create_api_key");
  keep(created);
  char *key = field(created, "key"), *api_key_id = NULL;
  char *api_key = created ? strstr(created, "\"api_key\":") : NULL;
  if (api_key) api_key_id = field(api_key, "id");
  char *key_arguments = own(fmt("{\"key\":\"%s\"}", key ? key : ""));
  CHECK(clm_authenticate_api_key(h, key_arguments, &api_actor) == CLM_OK && api_actor,
        "authenticate_api_key");
  char *api_description = NULL;
  CHECK(api_actor && clm_actor_json(api_actor, &api_description) == CLM_OK &&
          strstr(api_description, "\"kind\":\"api_key\""), "the key's actor is an api_key actor");
  keep(api_description);
  char *keys = call("list_api_keys", clm_list_api_keys, alice, NULL);
  CHECK(keys && key && !strstr(keys, key), "list_api_keys never shows the secret");
  CHECK(clm_revoke_api_key(h, alice, own(fmt("{\"id\":\"%s\"}", api_key_id ? api_key_id : ""))) ==
          CLM_OK, "revoke_api_key");
  clm_actor *revoked = NULL;
  CHECK(clm_authenticate_api_key(h, key_arguments, &revoked) == CLM_AUTHENTICATION && !revoked,
        "a revoked key no longer authenticates");

  CHECK(clm_logout(h, arguments) == CLM_OK, "logout");
  clm_actor *gone = NULL;
  CHECK(clm_validate_session(h, arguments, &gone) == CLM_AUTHENTICATION && !gone,
        "a logged-out session no longer validates");
  uint64_t count = UINT64_MAX;
  CHECK(clm_revoke_user_sessions(h, sys, own(fmt("{\"user_id\":\"%s\"}", alice_id)), &count) ==
          CLM_OK && count != UINT64_MAX, "revoke_user_sessions gives a count");
  CHECK(clm_purge_expired_sessions(h, sys, NULL, &count) == CLM_OK, "purge_expired_sessions");
}

/* ---- roles and organizations ----------------------------------------------- */
static void access(void) {
  char *role = call("create_role", clm_create_role, sys,
                    "{\"new\":{\"role_code\":\"READER\",\"role_name\":\"Reader\","
                    "\"permissions\":{\"certificates\":[\"read\"],\"users\":[\"read\"]}}}");
  char *role_id = field(role, "id");
  CHECK(call(NULL, clm_get_role_by_code, sys, "{\"code\":\"READER\"}") != NULL, "get_role_by_code");
  CHECK(call(NULL, clm_assign_role, sys, "{\"user_id\":\"%s\",\"role_id\":\"%s\"}", alice_id,
             role_id) != NULL, "assign_role");
  clm_actor *reader = NULL;
  CHECK(clm_actor_for_user(h, own(fmt("{\"user_id\":\"%s\"}", alice_id)), &reader) == CLM_OK,
        "actor_for_user");
  char *users = call(NULL, clm_list_users, reader, NULL);
  CHECK(users && strstr(users, "\"alice\""), "with the role, alice may list users");
  clm_actor_free(reader);
  char *roles = call("list_roles", clm_list_roles, sys, "{\"page\":{\"limit\":100}}");
  CHECK(roles && strstr(roles, "READER") && strstr(roles, "APPROVER"), "list_roles has built-in and custom roles");
  CHECK(call(NULL, clm_update_role_permissions, sys,
             "{\"id\":\"%s\",\"permissions\":{\"certificates\":[\"read\",\"export\"]}}", role_id) != NULL,
        "update_role_permissions");
  CHECK(call(NULL, clm_get_organization, sys, "{\"id\":\"%s\"}", org_id) != NULL, "get_organization");
  char *orgs = call("list_organizations", clm_list_organizations, sys, NULL);
  CHECK(orgs && strstr(orgs, "ACME"), "list_organizations");
  char *bob = call("create a second user", clm_create_user, sys,
                   "{\"new\":{\"username\":\"bob\",\"email\":\"bob@example.com\"}}");
  char *bob_id = field(bob, "id");
  CHECK(clm_add_organization_member(h, sys, own(fmt("{\"organization_id\":\"%s\",\"user_id\":\"%s\","
                                                   "\"membership_role\":\"member\"}", org_id, bob_id))) ==
          CLM_OK, "add_organization_member");
  CHECK(clm_add_organization_member(h, sys, own(fmt("{\"organization_id\":\"%s\",\"user_id\":\"%s\","
                                                   "\"membership_role\":\"emperor\"}", org_id, bob_id))) ==
          CLM_INVALID_INPUT, "an unknown membership role is INVALID_INPUT");
  CHECK(clm_remove_organization_member(h, sys, own(fmt("{\"organization_id\":\"%s\",\"user_id\":\"%s\"}",
                                                      org_id, bob_id))) == CLM_OK,
        "remove_organization_member");
  /* bob approves workflow steps later. */
  char *approver_role = call(NULL, clm_get_role_by_code, sys, "{\"code\":\"APPROVER\"}");
  char *approver_role_id = field(approver_role, "id");
  CHECK(call(NULL, clm_assign_role, sys, "{\"user_id\":\"%s\",\"role_id\":\"%s\"}", bob_id,
             approver_role_id) != NULL, "assign the APPROVER role");
  CHECK(clm_actor_for_user(h, own(fmt("{\"user_id\":\"%s\"}", bob_id)), &approver) == CLM_OK,
        "the approver's actor");
}

/* ---- policies, CAs, issuance ----------------------------------------------- */
static char *policy_id, *root, *root_id, *inter, *inter_id;

static void policies_and_authorities(void) {
  char *policy = call("create_policy", clm_create_policy, sys,
                      "{\"new\":{\"policy_code\":\"TLS\",\"name\":\"TLS\",\"rules\":"
                      "{\"max_validity_days\":397,\"allowed_domains\":[\"example.com\"],"
                      "\"allow_subdomains\":true}}}");
  policy_id = field(policy, "id");
  CHECK(call(NULL, clm_get_policy_by_code, sys, "{\"code\":\"TLS\"}") != NULL, "get_policy_by_code");
  char *updated = call("update_policy", clm_update_policy, sys,
                       "{\"id\":\"%s\",\"update\":{\"description\":\"Server certificates\"}}", policy_id);
  CHECK(updated && strstr(updated, "Server certificates"), "update_policy changed the description");
  char *policies = call("list_policies", clm_list_policies, sys, "{\"filter\":{\"status\":\"active\"}}");
  CHECK(policies && strstr(policies, "\"TLS\""), "list_policies with a filter");

  root = call("create_root_ca", clm_create_root_ca, sys,
              "{\"new\":{\"subject\":{\"common_name\":\"Test Root\",\"organization\":\"Acme\","
              "\"country\":\"US\"},\"key_algorithm\":\"ecdsa_p384\",\"path_len\":1}}");
  root_id = field(root, "id");
  inter = call("create_intermediate_ca", clm_create_intermediate_ca, sys,
               "{\"issuer_id\":\"%s\",\"new\":{\"subject\":{\"common_name\":\"Test Issuing CA\"},"
               "\"path_len\":0,\"validity_days\":1825,"
               "\"crl_distribution_points\":[\"http://pki.example.com/issuing.crl\"]}}", root_id);
  inter_id = field(inter, "id");
  char *authorities = call("list_authorities", clm_list_authorities, sys, NULL);
  CHECK(authorities && count_of(authorities, "\"issuance_urls\"") >= 2, "list_authorities lists both");
  write_file(work, "root.pem", field(root, "certificate_pem"));
  write_file(work, "intermediate.pem", field(inter, "certificate_pem"));
}

static char *issue(const char *cn) {
  return call(NULL, clm_issue_certificate, sys,
              "{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":90,"
              "\"subject\":{\"common_name\":\"%s\"},\"sans\":[{\"type\":\"DNS\",\"value\":\"%s\"}]}}",
              inter_id, policy_id, cn, cn);
}

static char *server_id, *server_serial, *csr_cert_id;

static void issuance(void) {
  char *dry = call("dry_run_issuance", clm_dry_run_issuance, sys,
                   "{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":900,"
                   "\"subject\":{\"common_name\":\"x.example.com\"}}}", inter_id, policy_id);
  CHECK(dry && strstr(dry, "max_validity_days"), "the dry run names the failing rule");
  char *server = issue("server.example.com");
  CHECK(server && strstr(server, "\"outcome\":\"issued\""), "issue_certificate (clm generates the key)");
  server_id = field(server, "id");
  server_serial = field(server, "serial_number");
  write_file(work, "server.pem", field(server, "certificate_pem"));
  CHECK(sh("openssl verify -CAfile %s/root.pem -untrusted %s/intermediate.pem %s/server.pem >/dev/null",
           work, work, work) == 0, "openssl verify accepts the server certificate");
  CHECK(status_of(clm_issue_certificate, sys,
                  own(fmt("{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":30,"
                          "\"subject\":{\"common_name\":\"evil.example.net\"},"
                          "\"sans\":[{\"type\":\"DNS\",\"value\":\"evil.example.net\"}]}}",
                          inter_id, policy_id))) == CLM_POLICY_VIOLATION,
        "a name outside the policy is POLICY_VIOLATION");

  /* The refusal's structure (clm_last_error_json): every violated rule, as
   * a list, each with its message. */
  clm_status refused = status_of(
      clm_issue_certificate, sys,
      own(fmt("{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":900,"
              "\"subject\":{\"common_name\":\"evil.example.net\"},"
              "\"sans\":[{\"type\":\"DNS\",\"value\":\"evil.example.net\"}]}}",
              inter_id, policy_id)));
  const char *error = clm_last_error_json();
  CHECK(refused == CLM_POLICY_VIOLATION && error &&
          strstr(error, "\"code\":\"POLICY_VIOLATION\"") &&
          json_number(error, "number") == CLM_POLICY_VIOLATION &&
          strstr(error, "\"name\":\"PolicyViolation\"") && strstr(error, "\"field\":null"),
        "clm_last_error_json gives the refusal's code, number and name");
  char *rules[8] = {0}, *messages[8] = {0};
  int violated = json_array_field(error, "violations", "rule", rules, 8);
  int explained = json_array_field(error, "violations", "message", messages, 8);
  CHECK(violated == 2 && contains_name(rules, violated, "max_validity_days") &&
          contains_name(rules, violated, "allowed_domains"),
        "the refusal lists both violated rules, max_validity_days and allowed_domains");
  int all_explained = explained == violated;
  for (int i = 0; i < violated && i < 8; i++) {
    all_explained = all_explained && messages[i] && *messages[i];
    if (rules[i]) printf("     violated: %s: %s\n", rules[i], messages[i] ? messages[i] : "?");
  }
  CHECK(all_explained, "each violated rule has its message");
  for (int i = 0; i < 8; i++) {
    free(rules[i]);
    free(messages[i]);
  }

  char *key = call("export_private_key", clm_export_private_key, sys, "{\"certificate_id\":\"%s\"}",
                   server_id);
  CHECK(key && strncmp(key, "-----BEGIN PRIVATE KEY-----", 27) == 0,
        "export_private_key gives the PEM text itself");
  if (key) {
    write_file(work, "server.key", key);
    CHECK(sh("test \"$(openssl pkey -in %s/server.key -pubout)\" = "
             "\"$(openssl x509 -in %s/server.pem -noout -pubkey)\"", work, work) == 0,
          "the exported key matches the certificate");
  }

  /* A CSR made by clm (no database, no actor), then issued from it. */
  char *bundle = NULL;
  CHECK(clm_create_csr(h, "{\"subject\":{\"common_name\":\"csr.example.com\"},"
                          "\"sans\":[{\"type\":\"DNS\",\"value\":\"csr.example.com\"}]}", &bundle) == CLM_OK,
        "create_csr");
  keep(bundle);
  char *csr = field(bundle, "csr_pem"), *csr_key = field(bundle, "private_key_pem");
  CHECK(csr && strstr(csr, "BEGIN CERTIFICATE REQUEST") && csr_key && strstr(csr_key, "PRIVATE KEY"),
        "the CSR bundle has a CSR and its key");
  if (csr) {
    write_file(work, "csr.pem", csr);
    CHECK(sh("openssl req -in %s/csr.pem -verify -noout 2>&1 | grep -q 'verify OK'", work) == 0,
          "openssl verifies the CSR's signature");
  }
  char *escaped = own(malloc(csr ? strlen(csr) * 2 + 1 : 1)), *w = escaped;
  for (const char *r = csr ? csr : ""; *r; r++) {
    if (*r == '\n') {
      *w++ = '\\';
      *w++ = 'n';
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  char *from_csr = call("issue_certificate from the CSR", clm_issue_certificate, sys,
                        "{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":30,"
                        "\"csr\":\"%s\"}}", inter_id, policy_id, escaped);
  csr_cert_id = field(from_csr, "id");
  CHECK(status_of(clm_export_private_key, sys, own(fmt("{\"certificate_id\":\"%s\"}", csr_cert_id))) ==
          CLM_NOT_FOUND, "clm keeps no key for a CSR it issued");
}

/* ---- import and inventory -------------------------------------------------- */
static void inventory(void) {
  int made = sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
                "-subj /CN=imported.example.org -keyout %s/imported.key -out %s/imported.pem "
                "2>/dev/null", work, work);
  CHECK(made == 0, "openssl makes a certificate to import");
  FILE *f = fopen(own(fmt("%s/imported.pem", work)), "r");
  char pem[8192] = "", escaped[16384], *w = escaped;
  if (f) {
    size_t n = fread(pem, 1, sizeof pem - 1, f);
    pem[n] = '\0';
    fclose(f);
  }
  for (const char *r = pem; *r; r++) {
    if (*r == '\n') {
      *w++ = '\\';
      *w++ = 'n';
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  char *report = call("import_certificates", clm_import_certificates, sys,
                      "{\"request\":{\"pem\":\"%s\"}}", escaped);
  CHECK(report && strstr(report, "imported"), "the import report counts the certificate");
  char *from_file = NULL;
  import_progress_calls = 0;
  CHECK(clm_import_certificates_from_file(h, sys, own(fmt("{\"path\":\"%s/imported.pem\"}", work)),
                                          on_import_progress, &import_progress_calls, &from_file) == CLM_OK,
        "import_certificates_from_file");
  keep(from_file);
  CHECK(from_file && strstr(from_file, "\"already_present\":1") && import_progress_calls > 0,
        "the file import finds the certificate present and reports progress");

  char *found = call("search_certificates", clm_search_certificates, sys,
                     "{\"search\":{\"common_name\":\"imported.example.org\"},\"page\":{\"limit\":5}}");
  CHECK(found && count_of(found, "\"subject_dn\"") == 1, "search finds the imported certificate");
  char *imported_id = field(found, "id");
  CHECK(call(NULL, clm_get_certificate, sys, "{\"id\":\"%s\"}", imported_id) != NULL, "get_certificate");
  char *fingerprint = field(found, "certificate_id");
  CHECK(call(NULL, clm_get_certificate_by_certificate_id, sys, "{\"certificate_id\":\"%s\"}",
             fingerprint) != NULL, "get_certificate_by_certificate_id");
  char *pem_text = call("get_certificate_pem", clm_get_certificate_pem, sys, "{\"id\":\"%s\"}", server_id);
  CHECK(pem_text && strncmp(pem_text, "-----BEGIN CERTIFICATE-----", 27) == 0,
        "get_certificate_pem gives PEM text");
  char *chain = call("certificate_chain", clm_certificate_chain, sys, "{\"id\":\"%s\"}", server_id);
  CHECK(chain && count_of(chain, "\"subject_dn\"") == 3, "the chain runs up to the root");
  CHECK(clm_delete_certificate(h, sys, own(fmt("{\"id\":\"%s\"}", imported_id))) == CLM_OK,
        "delete_certificate");
  CHECK(status_of(clm_get_certificate, sys, own(fmt("{\"id\":\"%s\"}", imported_id))) == CLM_NOT_FOUND,
        "a deleted certificate is NOT_FOUND");
  CHECK(call(NULL, clm_restore_certificate, sys, "{\"id\":\"%s\"}", imported_id) != NULL,
        "restore_certificate");
  char *refreshed = call("refresh_certificate_statuses", clm_refresh_certificate_statuses, sys,
                         "{\"at\":\"2030-01-01T00:00:00Z\"}");
  CHECK(refreshed != NULL, "refresh_certificate_statuses at a given time");
  CHECK(call("reconcile", clm_reconcile, sys, NULL) != NULL, "reconcile");
}

/* ---- revocation, CRL, renewal, rotation ------------------------------------ */
static void revocation(void) {
  char *other = issue("old.example.com");
  char *other_id = field(other, "id"), *other_serial = field(other, "serial_number");
  char *held = issue("held.example.com");
  char *held_id = field(held, "id");
  CHECK(call("revoke_certificate", clm_revoke_certificate, sys,
             "{\"id\":\"%s\",\"reason\":\"key_compromise\",\"comment\":\"test\"}", other_id) != NULL,
        "revoke with key_compromise");
  CHECK(call("certificate_hold", clm_revoke_certificate, sys,
             "{\"id\":\"%s\",\"reason\":\"certificate_hold\"}", held_id) != NULL, "put on hold");
  char *released = call("release_certificate_hold", clm_release_certificate_hold, sys, "{\"id\":\"%s\"}",
                        held_id);
  CHECK(released && strstr(released, "\"status\":\"active\""), "the released certificate is active");
  char *generated_crl = call("generate_crl", clm_generate_crl, sys,
                             "{\"issuer_id\":\"%s\",\"next_update_hours\":48}", inter_id);
  CHECK(generated_crl && strstr(generated_crl, "\"size_bytes\":") && !strstr(generated_crl, "\"pem\""),
        "generate_crl returns a summary with the CRL's size");
  char *crl = call("latest_crl", clm_latest_crl, sys, "{\"issuer_id\":\"%s\"}", inter_id);
  char *crl_pem = field(crl, "pem");
  if (crl_pem) {
    write_file(work, "crl.pem", crl_pem);
    CHECK(sh("openssl crl -in %s/crl.pem -CAfile %s/intermediate.pem -noout 2>&1 | grep -q 'verify OK'",
             work, work) == 0, "openssl crl verifies the CRL");
    char upper[256];
    size_t i = 0;
    for (; other_serial && other_serial[i] && i < sizeof upper - 1; i++)
      upper[i] = (char)(other_serial[i] >= 'a' && other_serial[i] <= 'f' ? other_serial[i] - 32 : other_serial[i]);
    upper[i] = '\0';
    CHECK(sh("openssl crl -in %s/crl.pem -noout -text | tr -d ':' | grep -q %s", work, upper) == 0,
          "the CRL lists the revoked serial");
    CHECK(sh("openssl verify -crl_check -CRLfile %s/crl.pem -CAfile %s/root.pem -untrusted "
             "%s/intermediate.pem %s/server.pem >/dev/null", work, work, work, work) == 0,
          "openssl verify -crl_check accepts the unrevoked server certificate");
  }

  char *renewed = call("renew_certificate", clm_renew_certificate, sys,
                       "{\"certificate_id\":\"%s\",\"options\":{\"validity_days\":60}}", server_id);
  char *renewed_id = field(renewed, "id");
  CHECK(renewed && renewed_id && strcmp(renewed_id, server_id) != 0, "the renewal is a new certificate");

  progress_calls = progress_ok = 0;
  char *rotation = NULL;
  CHECK(clm_rotate_data_key(h, sys, "{\"batch_size\":2}", on_progress, &progress_calls, &rotation) ==
          CLM_OK, "rotate_data_key");
  keep(rotation);
  CHECK(progress_calls > 0 && progress_ok == progress_calls,
        "the progress callback ran with its user_data and JSON");
  CHECK(clm_rotate_data_key(h, sys, NULL, NULL, NULL, &rotation) == CLM_OK,
        "rotate_data_key without a callback");
  keep(rotation);
  CHECK(call("key_status", clm_key_status, sys, NULL) != NULL, "key_status");
  char *rotations = call("list_key_rotations", clm_list_key_rotations, sys, NULL);
  CHECK(rotations && count_of(rotations, "\"rotation_type\":\"data_key\"") >= 2, "both rotations are listed");
  char *key = call("export after rotation", clm_export_private_key, sys, "{\"certificate_id\":\"%s\"}",
                   server_id);
  CHECK(key && strstr(key, "PRIVATE KEY"), "keys still open after the rotation");
}

/* ---- workflows, approvals, notifications ----------------------------------- */
static void workflows(void) {
  char *workflow = call("create_workflow", clm_create_workflow, sys,
                        "{\"new\":{\"workflow_code\":\"TWO-EYES\",\"name\":\"Two eyes\",\"definition\":"
                        "{\"steps\":[{\"step_id\":1,\"type\":\"validation\"},"
                        "{\"step_id\":2,\"type\":\"approval\",\"approvers\":[\"role:APPROVER\"]},"
                        "{\"step_id\":3,\"type\":\"issuance\"}]}}}");
  CHECK(call(NULL, clm_get_workflow_by_code, sys, "{\"code\":\"TWO-EYES\"}") != NULL, "get_workflow_by_code");
  char *workflow_id = field(workflow, "id");
  CHECK(call(NULL, clm_get_workflow, sys, "{\"id\":\"%s\"}", workflow_id) != NULL, "get_workflow");
  CHECK(call("list_workflows", clm_list_workflows, sys, NULL) != NULL, "list_workflows");
  char *policy = call("an approval policy", clm_create_policy, sys,
                      "{\"new\":{\"policy_code\":\"GUARDED\",\"name\":\"Guarded\",\"rules\":"
                      "{\"max_validity_days\":90,\"allowed_domains\":[\"example.com\"],"
                      "\"allow_subdomains\":true,\"require_approval\":true,\"workflow_code\":\"TWO-EYES\"}}}");
  char *guarded_id = field(policy, "id");
  char *pending = call("issue under approval", clm_issue_certificate, sys,
                       "{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":30,"
                       "\"subject\":{\"common_name\":\"guarded.example.com\"},"
                       "\"sans\":[{\"type\":\"DNS\",\"value\":\"guarded.example.com\"}]}}",
                       inter_id, guarded_id);
  CHECK(pending && strstr(pending, "\"outcome\":\"pending\""), "the request waits for approval");
  char *approvals = call("pending_approvals", clm_pending_approvals, approver, NULL);
  char *instance_id = field(approvals, "workflow_instance_id");
  CHECK(instance_id != NULL, "the approver sees the pending approval");
  char *view = call("get_workflow_instance", clm_get_workflow_instance, sys, "{\"id\":\"%s\"}", instance_id);
  CHECK(view && strstr(view, "\"steps\""), "the instance has its steps");
  char *notifications = call("list_notifications", clm_list_notifications, approver,
                             "{\"unread_only\":true}");
  CHECK(notifications && strstr(notifications, "approval_required"), "the approver was notified");
  char *decided = call("decide_approval", clm_decide_approval, approver,
                       "{\"instance_id\":\"%s\",\"approve\":true,\"comment\":\"fine\"}", instance_id);
  CHECK(decided && strstr(decided, "\"status\":\"completed\""), "the approved instance completed");
  char *issued = call(NULL, clm_search_certificates, sys,
                      "{\"search\":{\"common_name\":\"guarded.example.com\"}}");
  CHECK(issued && count_of(issued, "\"subject_dn\"") == 1, "the approved certificate was issued");

  /* A second request, cancelled. */
  char *second = call("a second request", clm_issue_certificate, sys,
                      "{\"request\":{\"issuer_id\":\"%s\",\"policy_id\":\"%s\",\"validity_days\":30,"
                      "\"subject\":{\"common_name\":\"cancel.example.com\"}}}", inter_id, guarded_id);
  char *second_instance = field(second, "workflow_instance_id");
  char *cancelled = call("cancel_workflow", clm_cancel_workflow, sys, "{\"instance_id\":\"%s\"}",
                         second_instance);
  CHECK(cancelled && strstr(cancelled, "\"status\":\"cancelled\""), "the cancelled instance is cancelled");
  uint64_t count = UINT64_MAX;
  CHECK(clm_expire_stale_workflows(h, sys, "{\"at\":\"2099-01-01T00:00:00Z\"}", &count) == CLM_OK &&
          count != UINT64_MAX, "expire_stale_workflows");

  char *outbox = call("fetch_undelivered_notifications", clm_fetch_undelivered_notifications, sys,
                      "{\"limit\":100}");
  char *notification_id = field(outbox, "id");
  CHECK(notification_id != NULL, "the outbox has notifications");
  CHECK(clm_mark_notifications_delivered(h, sys, own(fmt("{\"ids\":[\"%s\"]}", notification_id)), &count) ==
          CLM_OK && count == 1, "mark_notifications_delivered counts one");
  char *mine = call(NULL, clm_list_notifications, approver, NULL);
  char *mine_id = field(mine, "id");
  CHECK(mine_id && clm_mark_notification_read(h, approver, own(fmt("{\"id\":\"%s\"}", mine_id))) == CLM_OK,
        "mark_notification_read");
  CHECK(clm_mark_all_notifications_read(h, approver, NULL, &count) == CLM_OK,
        "mark_all_notifications_read");
}

/* ---- lifecycle and audit ------------------------------------------------------ */
static void lifecycle_and_audit(void) {
  char *report = call("run_lifecycle", clm_run_lifecycle, sys, NULL);
  CHECK(report != NULL, "run_lifecycle now");
  char *events = call("list_audit_events", clm_list_audit_events, sys,
                      "{\"log\":\"core\",\"filter\":{\"event_type\":\"user.created\"},\"page\":{\"limit\":5}}");
  CHECK(events && strstr(events, "\"items\":["), "list_audit_events with a filter");
  char *secure_events = call(NULL, clm_list_audit_events, sys, "{\"log\":\"secure\"}");
  CHECK(secure_events && strstr(secure_events, "\"items\":[{"), "the secure trail has events");
  char *secure = call("verify secure chain", clm_verify_audit_chain, sys, "{\"log\":\"secure\"}");
  CHECK(secure && strstr(secure, "\"broken\":null"), "the secure audit chain is intact");
  char *core = call("verify core chain", clm_verify_audit_chain, sys, "{\"log\":\"core\"}");
  CHECK(core && strstr(core, "\"broken\":null"), "the core audit chain is intact");
  CHECK(status_of(clm_verify_audit_chain, approver, "{\"log\":\"core\"}") == CLM_PERMISSION_DENIED,
        "an approver may not verify the audit chain");
  CHECK(status_of(clm_verify_audit_chain, sys, "{\"log\":\"nope\"}") == CLM_INVALID_INPUT,
        "an unknown log is INVALID_INPUT");
}

/* ---- the generic entry point ---------------------------------------------------- */
static void generic(void) {
  char *out = NULL;
  clm_actor *actor = NULL;
  CHECK(clm_call(h, NULL, "version", NULL, NULL, NULL, &out, &actor) == CLM_OK && out &&
          out[0] == '"' && actor == NULL, "clm_call version gives a JSON string, no actor");
  keep(out);
  CHECK(clm_call(h, NULL, "system_actor", NULL, NULL, NULL, &out, &actor) == CLM_OK && actor &&
          strstr(out, "\"kind\":\"system\""), "clm_call system_actor gives an actor and its description");
  keep(out);
  CHECK(clm_call(h, actor, "list_users", "{\"page\":{\"limit\":1}}", NULL, NULL, &out, NULL) == CLM_OK &&
          strstr(out, "\"next_cursor\""), "clm_call list_users with the actor it gave");
  keep(out);
  progress_calls = progress_ok = 0;
  CHECK(clm_call(h, actor, "rotate_data_key", NULL, on_progress, &progress_calls, &out, NULL) == CLM_OK &&
          progress_calls > 0, "clm_call rotate_data_key reports progress");
  keep(out);
  clm_actor_free(actor);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: api_test WORK_DIR\n");
    return 2;
  }
  work = argv[1];
  char *options = fmt("{\"sqlite_dir\":\"%s/data\",\"master_key_file\":\"%s/master.key\","
                      "\"create_master_key\":true}", work, work);
  CHECK(clm_open(options, &h) == CLM_OK && h, "open a SQLite directory, creating the key file");
  free(options);
  if (!h) return finish();
  CHECK(clm_system_actor(h, &sys) == CLM_OK && sys, "system_actor");

  identity();
  access();
  policies_and_authorities();
  if (inter_id && policy_id) {
    issuance();
    inventory();
    revocation();
    workflows();
  }
  lifecycle_and_audit();
  generic();

  CHECK(clm_close(h) == CLM_OK, "close");
  for (size_t i = 0; i < library_count; i++) clm_string_free(library_strings[i]);
  for (size_t i = 0; i < own_count; i++) free(own_strings[i]);
  clm_actor_free(alice);
  clm_actor_free(api_actor);
  clm_actor_free(approver);
  clm_actor_free(sys);
  clm_handle_free(h);
  return finish();
}

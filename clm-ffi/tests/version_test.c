/*
 * The header's version macros against the library's clm_version(): a
 * program compiled with this clm.h and run with the libclm it was built
 * with sees the same version, and CLM_VERSION_STRING is
 * MAJOR.MINOR.PATCH (plus a pre-release suffix, if any). Prints
 * "version X" last, which scripts/test-bindings compares with
 * `pkg-config --modversion clm`.
 *
 *     cc -I include -o version_test version_test.c -L lib -lclm && ./version_test
 */
#include "support.h"

int main(void) {
  const char *runtime = clm_version();
  CHECK(runtime != NULL, "clm_version() is not NULL");
  if (!runtime) return finish();
  CHECK(strcmp(runtime, CLM_VERSION_STRING) == 0, "clm_version() equals CLM_VERSION_STRING");
  char numbers[64];
  snprintf(numbers, sizeof numbers, "%d.%d.%d", CLM_VERSION_MAJOR, CLM_VERSION_MINOR,
           CLM_VERSION_PATCH);
  size_t length = strlen(numbers);
  CHECK(strncmp(CLM_VERSION_STRING, numbers, length) == 0
            && (CLM_VERSION_STRING[length] == '\0' || CLM_VERSION_STRING[length] == '-'),
        "CLM_VERSION_STRING is CLM_VERSION_MAJOR.MINOR.PATCH");
  int status = finish();
  printf("version %s\n", runtime);
  return status;
}

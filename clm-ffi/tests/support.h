/*
 * Helpers shared by the C test programs (header-only; each test is one
 * program): a CHECK macro that counts, a JSON string/number reader good
 * enough for the records' ids and PEM fields, file and shell helpers.
 */
#ifndef CLM_TEST_SUPPORT_H
#define CLM_TEST_SUPPORT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clm.h"

static int passed, failed;

#define CHECK(cond, what)                                                   \
  do {                                                                      \
    if (cond) {                                                             \
      passed++;                                                             \
      printf("ok   %s\n", what);                                            \
    } else {                                                                \
      failed++;                                                             \
      const char *m_ = clm_last_error_message();                            \
      printf("FAIL %s (%s line %d; last error: %s)\n", what, __FILE__,      \
             __LINE__, m_ ? m_ : "none");                                   \
    }                                                                       \
  } while (0)

/* Exits with the summary line (1 on any failure). */
static inline int finish(void) {
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

/* The decoded value of the first string field "key" of a JSON text, or
 * NULL. Caller frees with free(). */
static inline char *json_string(const char *json, const char *key) {
  char needle[128];
  snprintf(needle, sizeof needle, "\"%s\":\"", key);
  const char *at = json ? strstr(json, needle) : NULL;
  if (!at) return NULL;
  at += strlen(needle);
  char *out = malloc(strlen(at) + 1), *w = out;
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
        if (strlen(r + 1) >= 4 && sscanf(r + 1, "%4x", &code) == 1) r += 4;
        *w++ = code < 0x80 ? (char)code : '?';
        break;
      }
      default: *w++ = *r;
    }
  }
  *w = '\0';
  return out;
}

/* The number of the first field "key" of a JSON text, or -1. */
static inline long long json_number(const char *json, const char *key) {
  char needle[128];
  snprintf(needle, sizeof needle, "\"%s\":", key);
  const char *at = json ? strstr(json, needle) : NULL;
  if (!at) return -1;
  return strtoll(at + strlen(needle), NULL, 10);
}

/* How many times `needle` occurs in `text`. */
static inline int count_of(const char *text, const char *needle) {
  int n = 0;
  for (const char *at = text ? strstr(text, needle) : NULL; at; at = strstr(at + 1, needle)) n++;
  return n;
}

/* printf into a new buffer. Caller frees. */
static inline char *fmt(const char *format, ...) {
  va_list args, again;
  va_start(args, format);
  va_copy(again, args);
  int size = vsnprintf(NULL, 0, format, args);
  va_end(args);
  char *out = malloc((size_t)size + 1);
  vsnprintf(out, (size_t)size + 1, format, again);
  va_end(again);
  return out;
}

static inline void write_file(const char *dir, const char *name, const char *text) {
  char *path = fmt("%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
  free(path);
}

/* Runs a shell command built with printf; returns its exit status. */
static inline int sh(const char *format, ...) {
  va_list args;
  va_start(args, format);
  char command[4096];
  vsnprintf(command, sizeof command, format, args);
  va_end(args);
  return system(command);
}

#endif

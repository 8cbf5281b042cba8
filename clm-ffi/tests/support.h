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

/* The end of the JSON string starting at `at` (its opening quote): the
 * character after the closing quote, or NULL when it is not closed. */
static inline const char *json_skip_string(const char *at) {
  for (at++; *at; at++) {
    if (*at == '\\' && at[1]) at++;
    else if (*at == '"') return at + 1;
  }
  return NULL;
}

/* Walks the array "array_key" of a JSON text element by element (strings
 * may hold brackets and braces) and copies each element's string field
 * "key" into out[0..max) (free() each; NULL where an element has none).
 * Returns the number of elements, or -1 when there is no such array or it
 * is malformed. Good enough for clm_last_error_json's "violations". */
static inline int json_array_field(const char *json, const char *array_key, const char *key,
                                   char **out, int max) {
  char needle[128];
  snprintf(needle, sizeof needle, "\"%s\":[", array_key);
  const char *at = json ? strstr(json, needle) : NULL;
  if (!at) return -1;
  at += strlen(needle);
  int count = 0;
  for (;;) {
    while (*at == ' ' || *at == '\n') at++;
    if (*at == ']') return count;
    const char *start = at;
    int depth = 0;
    do {
      if (*at == '"') {
        at = json_skip_string(at);
        if (!at) return -1;
        continue;
      }
      if (*at == '{' || *at == '[') depth++;
      else if (*at == '}' || *at == ']') depth--;
      else if (!*at) return -1;
      at++;
    } while (depth > 0);
    if (count < max) {
      char *element = malloc((size_t)(at - start) + 1);
      memcpy(element, start, (size_t)(at - start));
      element[at - start] = '\0';
      out[count] = json_string(element, key);
      free(element);
    }
    count++;
    while (*at == ' ' || *at == '\n') at++;
    if (*at == ',') at++;
    else if (*at != ']') return -1;
  }
}

/* Whether one of names[0..count) is `name`. */
static inline int contains_name(char **names, int count, const char *name) {
  for (int i = 0; i < count; i++)
    if (names[i] && strcmp(names[i], name) == 0) return 1;
  return 0;
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

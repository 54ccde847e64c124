/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A strict JSON (RFC 8259) parser for checking mmkctl -j output in the
 * guest, which has no other JSON tool.  It accepts exactly the grammar of
 * the RFC: no trailing commas, no comments, no leading zeros, no control
 * characters or invalid UTF-8 in strings, no lone surrogates, one value
 * per text.  It also refuses duplicate member names, which the RFC only
 * discourages, since no mmkctl output should have any.
 *
 * json_parse() builds a tree that the tests then query.
 */
#ifndef MMK_JSON_H
#define MMK_JSON_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum json_type { J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

struct json {
	enum json_type type;
	char *key;		/* member name, inside an object */
	char *str;		/* decoded string, or the number's text */
	struct json *child;	/* first element or member */
	struct json *next;	/* next sibling */
};

#define JSON_MAX_DEPTH	64

struct json_parser {
	const char *start, *p, *end;
	int depth;
	char *err;
	size_t errlen;
};

static inline void json_free(struct json *j)
{
	struct json *next;

	while (j) {
		next = j->next;
		json_free(j->child);
		free(j->key);
		free(j->str);
		free(j);
		j = next;
	}
}

static inline bool __attribute__((format(printf, 2, 3)))
json_fail(struct json_parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!ps->err[0]) {
		n = snprintf(ps->err, ps->errlen, "at byte %td: ", ps->p - ps->start);
		va_start(ap, fmt);
		if (n >= 0 && (size_t)n < ps->errlen)
			vsnprintf(ps->err + n, ps->errlen - n, fmt, ap);
		va_end(ap);
	}
	return false;
}

static inline void json_ws(struct json_parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
				   *ps->p == '\r'))
		ps->p++;
}

/* Growable output buffer for decoded strings. */
struct json_buf {
	char *s;
	size_t len, cap;
};

static inline bool json_buf_add(struct json_buf *b, const char *s, size_t n)
{
	char *t;

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		t = realloc(b->s, b->cap);
		if (!t)
			return false;
		b->s = t;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return true;
}

static inline int json_hex4(const char *p)
{
	int v = 0, i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (p[i] >= '0' && p[i] <= '9')
			v |= p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			v |= p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			v |= p[i] - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static inline size_t json_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = 0xc0 | (cp >> 6);
		out[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = 0xe0 | (cp >> 12);
		out[1] = 0x80 | ((cp >> 6) & 0x3f);
		out[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	out[0] = 0xf0 | (cp >> 18);
	out[1] = 0x80 | ((cp >> 12) & 0x3f);
	out[2] = 0x80 | ((cp >> 6) & 0x3f);
	out[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* Length of the well-formed UTF-8 sequence at @p, or 0. */
static inline size_t json_utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (end - p < (ptrdiff_t)n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

static inline bool json_string(struct json_parser *ps, char **out)
{
	struct json_buf b = { 0 };
	char enc[4];
	size_t n;
	int cp, lo;

	ps->p++;	/* the opening quote */
	if (!json_buf_add(&b, "", 0))
		return json_fail(ps, "out of memory");
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = *ps->p;

		if (c < 0x20) {
			free(b.s);
			return json_fail(ps, "control character %#x in a string", c);
		}
		if (c != '\\') {
			n = json_utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
			if (!n) {
				free(b.s);
				return json_fail(ps, "invalid UTF-8 in a string");
			}
			json_buf_add(&b, ps->p, n);
			ps->p += n;
			continue;
		}
		if (ps->end - ps->p < 2) {
			free(b.s);
			return json_fail(ps, "unterminated escape");
		}
		switch (ps->p[1]) {
		case '"':  json_buf_add(&b, "\"", 1); break;
		case '\\': json_buf_add(&b, "\\", 1); break;
		case '/':  json_buf_add(&b, "/", 1); break;
		case 'b':  json_buf_add(&b, "\b", 1); break;
		case 'f':  json_buf_add(&b, "\f", 1); break;
		case 'n':  json_buf_add(&b, "\n", 1); break;
		case 'r':  json_buf_add(&b, "\r", 1); break;
		case 't':  json_buf_add(&b, "\t", 1); break;
		case 'u':
			cp = ps->end - ps->p >= 6 ? json_hex4(ps->p + 2) : -1;
			if (cp < 0) {
				free(b.s);
				return json_fail(ps, "bad \\u escape");
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				free(b.s);
				return json_fail(ps, "lone low surrogate");
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				lo = ps->end - ps->p >= 12 && ps->p[6] == '\\' && ps->p[7] == 'u' ?
				     json_hex4(ps->p + 8) : -1;
				if (lo < 0xdc00 || lo > 0xdfff) {
					free(b.s);
					return json_fail(ps, "lone high surrogate");
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				ps->p += 6;
			}
			json_buf_add(&b, enc, json_utf8_encode(cp, enc));
			ps->p += 4;
			break;
		default:
			free(b.s);
			return json_fail(ps, "bad escape \\%c", ps->p[1]);
		}
		ps->p += 2;
	}
	if (ps->p >= ps->end) {
		free(b.s);
		return json_fail(ps, "unterminated string");
	}
	ps->p++;	/* the closing quote */
	*out = b.s;
	return true;
}

static inline bool json_digits(struct json_parser *ps)
{
	const char *start = ps->p;

	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	return ps->p > start;
}

static inline bool json_number(struct json_parser *ps, char **out)
{
	const char *start = ps->p;

	if (*ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0') {
		ps->p++;
	} else if (ps->p >= ps->end || *ps->p < '1' || *ps->p > '9' || !json_digits(ps)) {
		return json_fail(ps, "bad number");
	}
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (!json_digits(ps))
			return json_fail(ps, "bad fraction");
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!json_digits(ps))
			return json_fail(ps, "bad exponent");
	}
	*out = strndup(start, ps->p - start);
	return *out ? true : json_fail(ps, "out of memory");
}

static inline bool json_value(struct json_parser *ps, struct json *j);

/* Elements of an array or members of an object, after the bracket. */
static inline bool json_container(struct json_parser *ps, struct json *j, char close)
{
	struct json **tail = &j->child, *c, *o;

	if (++ps->depth > JSON_MAX_DEPTH)
		return json_fail(ps, "nested too deep");
	ps->p++;
	json_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return true;
	}
	for (;;) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return json_fail(ps, "out of memory");
		*tail = c;
		tail = &c->next;
		json_ws(ps);
		if (close == '}') {
			if (ps->p >= ps->end || *ps->p != '"')
				return json_fail(ps, "expected a member name");
			if (!json_string(ps, &c->key))
				return false;
			for (o = j->child; o != c; o = o->next)
				if (!strcmp(o->key, c->key))
					return json_fail(ps, "duplicate member \"%s\"", c->key);
			json_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return json_fail(ps, "expected ':'");
			ps->p++;
		}
		if (!json_value(ps, c))
			return false;
		json_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			ps->depth--;
			return true;
		}
		return json_fail(ps, "expected ',' or '%c'", close);
	}
}

static inline bool json_literal(struct json_parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return json_fail(ps, "unexpected character '%c'", *ps->p);
	ps->p += n;
	return true;
}

static inline bool json_value(struct json_parser *ps, struct json *j)
{
	json_ws(ps);
	if (ps->p >= ps->end)
		return json_fail(ps, "expected a value");
	switch (*ps->p) {
	case '{':
		j->type = J_OBJECT;
		return json_container(ps, j, '}');
	case '[':
		j->type = J_ARRAY;
		return json_container(ps, j, ']');
	case '"':
		j->type = J_STRING;
		return json_string(ps, &j->str);
	case 't':
		j->type = J_TRUE;
		return json_literal(ps, "true");
	case 'f':
		j->type = J_FALSE;
		return json_literal(ps, "false");
	case 'n':
		j->type = J_NULL;
		return json_literal(ps, "null");
	default:
		j->type = J_NUMBER;
		return json_number(ps, &j->str);
	}
}

/* Parse @len bytes of @text as one JSON text.  NULL with @err set on error. */
static inline struct json *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct json_parser ps = {
		.start = text, .p = text, .end = text + len, .err = err, .errlen = errlen,
	};
	struct json *j = calloc(1, sizeof(*j));

	err[0] = '\0';
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "NUL byte in the text");
		free(j);
		return NULL;
	}
	if (json_value(&ps, j)) {
		json_ws(&ps);
		if (ps.p == ps.end)
			return j;
		json_fail(&ps, "trailing characters after the value");
	}
	json_free(j);
	return NULL;
}

static inline const struct json *json_get(const struct json *obj, const char *key)
{
	const struct json *c;

	if (!obj || obj->type != J_OBJECT)
		return NULL;
	for (c = obj->child; c; c = c->next)
		if (!strcmp(c->key, key))
			return c;
	return NULL;
}

static inline size_t json_count(const struct json *j)
{
	const struct json *c;
	size_t n = 0;

	for (c = j ? j->child : NULL; c; c = c->next)
		n++;
	return n;
}

/* A non-negative integer number, exactly. */
static inline bool json_u64(const struct json *v, uint64_t *out)
{
	char *end;

	if (!v || v->type != J_NUMBER || v->str[0] == '-' || strpbrk(v->str, ".eE"))
		return false;
	errno = 0;
	*out = strtoull(v->str, &end, 10);
	return !errno && !*end;
}

static inline const char *json_str(const struct json *v)
{
	return v && v->type == J_STRING ? v->str : NULL;
}

#endif /* MMK_JSON_H */

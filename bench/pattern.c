// SPDX-License-Identifier: GPL-2.0
/*
 * The payload pattern and its checksum.
 *
 * Word i (8 bytes) of message seq is s + i * d, where s and d are derived
 * from seq.  The checksum is the pair (sum of w_i, sum of i * w_i), mod
 * 2^64: the second sum depends on where each word is, so a message that is
 * shifted, truncated, stale (another seq) or partly overwritten does not
 * match.  Both sums have a closed form for the pattern of seq, so the
 * receiver checks each message without a second pass over it.
 */
#include <string.h>

#include "bench.h"

uint64_t bench_mismatches;
uint64_t bench_corrupt_seq = UINT64_MAX;

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void pattern_of(uint64_t seq, uint64_t *s, uint64_t *d)
{
	*s = mix64(seq);
	*d = mix64(~seq) | 1;
}

void bench_fill(void *buf, size_t size, uint64_t seq)
{
	uint64_t *w = buf;
	size_t n = size / BENCH_WORD, i;
	uint64_t s, d;

	pattern_of(seq, &s, &d);
	for (i = 0; i < n; i++)
		w[i] = s + i * d;
	if (seq == bench_corrupt_seq && size)
		((unsigned char *)buf)[size / 2] ^= 0x40;
}

bool bench_check(const void *buf, size_t size, uint64_t seq)
{
	const uint64_t *w = buf;
	uint64_t n = size / BENCH_WORD, i, a = 0, b = 0, s, d;
	/* n <= 2^20 (sizes up to 8 MiB), so n(n-1)(2n-1) fits in 64 bits. */
	uint64_t t1 = n * (n - 1) / 2;
	uint64_t t2 = n ? n * (n - 1) * (2 * n - 1) / 6 : 0;

	for (i = 0; i < n; i++) {
		a += w[i];
		b += i * w[i];
	}
	pattern_of(seq, &s, &d);
	if (a == n * s + d * t1 && b == s * t1 + d * t2)
		return true;
	bench_mismatches++;
	return false;
}
